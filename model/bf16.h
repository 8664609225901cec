// bfloat16 <-> float32 conversion shared by the loader, the synthetic checkpoint writer and the
// reference's storage-point emulation. Host-only, exact, no libm.
#ifndef FUSECHECK_BF16_H
#define FUSECHECK_BF16_H

#include <stdint.h>
#include <string.h>

// Expanding bf16 to fp32 is exact: bf16 is the top 16 bits of an fp32.
static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// Round to nearest, ties to even, as the GPU's __float2bfloat16_rn does. NaN stays a (quiet) NaN.
static inline uint16_t float_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

// The value a bf16 storage point holds: round to bf16 and expand back.
static inline float round_to_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

// IEEE half -> fp32, exact (subnormals included).
static inline float f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exponent = 127 - 15 + 1;
            while ((mantissa & 0x400u) == 0) { mantissa <<= 1; exponent--; }
            bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif
