# Statistics and units written with the signs a Mac keyboard types: the micro sign (Option-M,
# U+00B5), the ohm sign (U+2126) and the angstrom sign (U+212B).
import math

xs = [1.0, 2.0, 3.5, 4.25]
µ = sum(xs) / len(xs)
σ = math.sqrt(sum((x - µ) ** 2 for x in xs) / len(xs))
print(f"mean = {µ:.3f}, sd = {σ:.3f}")

Ω = 220.0
Å = 1e-10
current = 5.0 / Ω
print(f"I = {current:.4f} A, 3 Å = {3 * Å:.1e} m")
