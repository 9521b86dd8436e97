# Three data frames made in a loop, then read back by their names.
for (i in 1:3) assign(paste0("df", i), data.frame(x = (3 * i - 2):(3 * i), g = letters[i]))
all <- do.call(rbind, mget(paste0("df", 1:3)))
print(nrow(all))
for (i in 1:3) {
  d <- get(paste0("df", i))
  cat(sprintf("df%d: mean %.1f, first %d\n", i, mean(get(paste0("df", i))$x), d$x[1]))
  print(summary(get(paste0("df", i))[["x"]]))
}
sizes <- sapply(mget(paste0("df", 1:3)), nrow)
print(sizes)
