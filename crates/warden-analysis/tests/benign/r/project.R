# An R project that keeps its helpers in files of their own.
source(file.path("R", "helpers.R"))
source(here::here("R", "plots.R"))
x <- c(1, 2, 3)
print(mean(x))
