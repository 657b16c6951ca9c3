# Reference numbers for the small-k options of trialmeta's frequentist engine:
# metafor's test = "z", "knha" and "adhoc" (modified Knapp-Hartung, max(1, q)), and the
# Higgins, Thompson & Spiegelhalter (2009) prediction interval, t with k - 2 df.
# Run:  Rscript tests/reference/make_metafor_adhoc_reference.R > tests/reference/metafor-adhoc.json
# (Debian: apt-get install r-cran-metafor.) metafor 3.8.1 has no pi.type argument, so the
# t(k-2) interval is computed from rma()'s estimate, se and tau2 with the published formula.
suppressMessages(library(metafor))
library(jsonlite)

fits <- function(yi, vi) {
  out <- list()
  for (t in c("z", "knha", "adhoc")) {
    r <- rma(yi, vi, method = "REML", test = t)
    out[[t]] <- list(call = sprintf("rma(yi, vi, method='REML', test='%s')", t),
                     estimate = r$b[1], se = r$se, ci_lb = r$ci.lb, ci_ub = r$ci.ub,
                     tau2 = r$tau2)
  }
  r <- rma(yi, vi, method = "REML")
  k <- r$k
  half <- qt(0.975, k - 2) * sqrt(r$tau2 + r$se^2)
  out[["higgins2009"]] <- list(
    call = "b +/- qt(0.975, k - 2) * sqrt(tau2 + se^2) from rma(yi, vi, method='REML')",
    pi_lb = r$b[1] - half, pi_ub = r$b[1] + half)
  out
}

ref <- list(metafor_version = as.character(packageVersion("metafor")),
            r_version = R.version.string)
# Hine 1989 (6 trials, RD): q < 1, so plain Knapp-Hartung is narrower than the Wald interval
hine <- escalc(measure = "RD", n1i = n1i, n2i = n2i, ai = ai, ci = ci, data = dat.hine1989)
ref$hine1989_RD <- list(
  escalc = "escalc(measure='RD', n1i=n1i, n2i=n2i, ai=ai, ci=ci, data=dat.hine1989)",
  yi = as.numeric(hine$yi), vi = as.numeric(hine$vi), fits = fits(hine$yi, hine$vi))
# BCG (13 trials, RR): q > 1, so the ad hoc and plain variants agree
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
ref$bcg_RR <- list(
  escalc = "escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)",
  yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi), fits = fits(bcg$yi, bcg$vi))
cat(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE))
