fib <- function(n) {
  a <- 0; b <- 1
  for (i in seq_len(n)) {
    t <- a + b
    a <- b
    b <- t
  }
  a
}
n <- 15
for (i in 0:n) cat(sprintf("fib(%d) = %.0f\n", i, fib(i)))
v <- sapply(0:10, fib)
print(summary(v))
i <- 0
repeat {
  i <- i + 1
  if (i > 3) break
}
