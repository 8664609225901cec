// The median of a set of timings, shared by every benchmark (the CPU engines' and the GPU's).
#ifndef FUSECHECK_MEDIAN_H
#define FUSECHECK_MEDIAN_H

// Sorts values[0, n) ascending in place (so values[0] is the minimum and values[n - 1] the maximum)
// and returns their median: the middle value, or the mean of the two middle values when n is even.
// n >= 1; NaNs are not expected (timings).
double median_of(double *values, int n);

#endif
