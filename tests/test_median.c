// median_of (model/median.h): the middle value of an odd count, the mean of the two middle values of
// an even one, and the values left sorted (benchmarks read the minimum and maximum from them).
#include <criterion/criterion.h>

#include "../model/median.h"

Test(median, odd_count_takes_the_middle_value) {
    double v[] = {5.0, 1.0, 3.0};
    cr_assert_eq(median_of(v, 3), 3.0);
    double one[] = {7.5};
    cr_assert_eq(median_of(one, 1), 7.5);
}

Test(median, even_count_takes_the_mean_of_the_middle_two) {
    double v[] = {4.0, 1.0, 10.0, 2.0};
    cr_assert_eq(median_of(v, 4), 3.0);
}

Test(median, leaves_the_values_sorted) {
    double v[] = {9.0, -1.0, 4.0, 4.0, 0.5};
    median_of(v, 5);
    for (int i = 1; i < 5; i++) cr_assert_leq(v[i - 1], v[i], "values[%d] = %g after values[%d] = %g", i, v[i], i - 1, v[i - 1]);
    cr_assert_eq(v[0], -1.0);
    cr_assert_eq(v[4], 9.0);
}
