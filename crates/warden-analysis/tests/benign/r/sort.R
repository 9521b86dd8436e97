# Reads numbers from stdin and sorts them; system("rm -rf /") in a comment is text.
con <- file("stdin")
x <- as.numeric(scan(con, quiet = TRUE))
close(con)
bubble <- function(v) {
  n <- length(v)
  if (n < 2) return(v)
  for (i in 1:(n - 1)) {
    for (j in 1:(n - i)) {
      if (v[j] > v[j + 1]) {
        t <- v[j]; v[j] <- v[j + 1]; v[j + 1] <- t
      }
    }
  }
  v
}
cat(bubble(x), "\n")
cat(nchar('system("rm -rf /")'), "\n")
