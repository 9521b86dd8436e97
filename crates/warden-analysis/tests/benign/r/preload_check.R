# Warns when the dynamic loader injected a library into this R session, and removes the loader's
# variables so that nothing started later inherits them.
preload <- Sys.getenv("LD_PRELOAD")
audit <- Sys.getenv("LD_AUDIT", unset = NA)
if (nzchar(preload)) {
  message("LD_PRELOAD: ", paste(strsplit(preload, ":")[[1]], collapse = ", "))
}
if (!is.na(audit)) {
  message("LD_AUDIT: ", audit)
}
Sys.unsetenv("LD_PRELOAD")
Sys.unsetenv("LD_AUDIT")
