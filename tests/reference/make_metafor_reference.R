# Reference numbers from R metafor for trialmeta's frequentist engine and effect sizes.
# Run:  Rscript tests/reference/make_metafor_reference.R > tests/reference/metafor-reference.json
# (Debian: apt-get install r-cran-metafor; R is never a runtime dependency of trialmeta.)
suppressMessages(library(metafor))
library(jsonlite)

fit_all <- function(yi, vi) {
  out <- list()
  for (m in c("FE", "DL", "REML", "ML", "PM")) {
    for (knha in c(FALSE, TRUE)) {
      if (m == "FE" && knha) next
      r <- rma(yi, vi, method = m, test = if (knha) "knha" else "z")
      p <- predict(r)
      key <- if (knha) paste0(m, "_HKSJ") else m
      out[[key]] <- list(
        call = sprintf("rma(yi, vi, method='%s', test='%s')", m, if (knha) "knha" else "z"),
        estimate = r$b[1], se = r$se, ci_lb = r$ci.lb, ci_ub = r$ci.ub,
        tau2 = r$tau2, I2 = r$I2, H2 = r$H2, QE = r$QE, QEp = r$QEp, k = r$k,
        pi_lb = if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb,
        pi_ub = if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub)
    }
  }
  out
}

ref <- list(metafor_version = as.character(packageVersion("metafor")),
            r_version = R.version.string)

# 1. BCG vaccine trials: RR, OR, RD
bcg <- dat.bcg
for (measure in c("RR", "OR", "RD")) {
  es <- escalc(measure = measure, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
  entry <- list(escalc = sprintf("escalc(measure='%s', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)", measure),
                yi = as.numeric(es$yi), vi = as.numeric(es$vi), fits = fit_all(es$yi, es$vi))
  if (measure %in% c("RR", "OR")) {
    mh <- rma.mh(measure = measure, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
    entry$MH <- list(call = sprintf("rma.mh(measure='%s', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)", measure),
                     estimate = mh$b[1], se = mh$se, ci_lb = mh$ci.lb, ci_ub = mh$ci.ub,
                     QE = mh$QE, I2 = mh$I2)
  }
  if (measure == "RR") {
    r <- rma(es$yi, es$vi, method = "REML")
    l1 <- leave1out(r)
    entry$leave1out_REML <- list(call = "leave1out(rma(yi, vi, method='REML'))",
                                 estimate = as.numeric(l1$estimate), se = as.numeric(l1$se),
                                 tau2 = as.numeric(l1$tau2))
    eg <- regtest(r, model = "lm")
    entry$egger_lm <- list(call = "regtest(rma(yi, vi, method='REML'), model='lm')",
                           zval = eg$zval, pval = eg$pval, dfs = eg$dfs, limit_est = eg$est)
  }
  ref[[paste0("bcg_", measure)]] <- entry
}

# 2. Normand 1999 (length of hospital stay): MD and SMD
nd <- dat.normand1999
for (measure in c("MD", "SMD")) {
  es <- escalc(measure = measure, m1i = m1i, sd1i = sd1i, n1i = n1i,
               m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
  ref[[paste0("normand_", measure)]] <- list(
    escalc = sprintf("escalc(measure='%s', m1i, sd1i, n1i, m2i, sd2i, n2i, data=dat.normand1999)", measure),
    yi = as.numeric(es$yi), vi = as.numeric(es$vi), fits = fit_all(es$yi, es$vi))
}

# 3. Zero cells (constructed): 0.5 added to studies with a zero cell only (metafor default)
z <- data.frame(ai = c(0, 3, 10, 7, 0), n1i = c(12, 15, 40, 30, 9),
                ci = c(2, 1, 4, 0, 0), n2i = c(12, 14, 41, 28, 10))
z$bi <- z$n1i - z$ai
z$di <- z$n2i - z$ci
es <- escalc(measure = "OR", ai = ai, bi = bi, ci = ci, di = di, data = z)
mh <- rma.mh(measure = "OR", ai = ai, bi = bi, ci = ci, di = di, data = z)
mhrr <- rma.mh(measure = "RR", ai = ai, bi = bi, ci = ci, di = di, data = z)
ref$zero_cells <- list(
  data = z, escalc = "escalc(measure='OR', ai, bi, ci, di)  # add=1/2, to='only0'",
  yi = as.numeric(es$yi), vi = as.numeric(es$vi),
  fits = fit_all(es$yi[!is.na(es$yi)], es$vi[!is.na(es$yi)]),
  MH_OR = list(call = "rma.mh(measure='OR', ...)", estimate = mh$b[1], se = mh$se, k = mh$k),
  MH_RR = list(call = "rma.mh(measure='RR', ...)", estimate = mhrr$b[1], se = mhrr$se,
               k = mhrr$k))

cat(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE))
