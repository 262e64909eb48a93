#ifndef LIB_MATHX_MATHX_H_
#define LIB_MATHX_MATHX_H_

/* Greatest common divisor of |a| and |b|; mx_gcd(0, 0) == 0. */
long mx_gcd(long a, long b);

/* n! for 0 <= n <= 20, or -1 when n is out of range. */
long mx_factorial(int n);

/* Returns 1 if the decimal digits of n read the same both ways. */
int mx_is_palindrome(long n);

#endif /* LIB_MATHX_MATHX_H_ */
