# The metadat corpus: public datasets as a metafor user saves them (one row per study, the
# escalc column names), and metafor's numbers for each, with the R call beside every number.
# Run from the repository root:
#   Rscript tests/reference/make_metadat_corpus.R > tests/reference/metadat-corpus.json
# It writes tests/data/metadat/*.csv too. Debian: apt-get install r-cran-metafor (metafor
# 3.8.1 brings the metadat datasets); R is never a runtime dependency of trialmeta.
suppressMessages(library(metafor))
library(jsonlite)

out_dir <- "tests/data/metadat"
save <- function(df, name) {
  write.csv(df, file.path(out_dir, paste0(name, ".csv")), row.names = FALSE, na = "")
}

one <- function(r, call) {
  p <- predict(r)
  list(call = call, estimate = r$b[1], se = r$se[1], ci_lb = r$ci.lb[1], ci_ub = r$ci.ub[1],
       tau2 = r$tau2, I2 = r$I2, QE = r$QE, QEp = r$QEp, k = r$k,
       pi_lb = if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb,
       pi_ub = if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub)
}
reg <- function(r, call) {
  list(call = call, terms = rownames(r$b), estimate = as.vector(r$b), se = r$se,
       ci_lb = r$ci.lb, ci_ub = r$ci.ub, p = r$pval, QM = r$QM, QMdf = r$QMdf,
       QMp = r$QMp, tau2 = r$tau2, k = r$k, test = r$test)
}
run <- function(expr) {
  call <- deparse1(substitute(expr))
  r <- eval(substitute(expr), parent.frame())
  if (nrow(r$b) > 1) reg(r, call) else one(r, call)
}
subgroups <- function(dat, col, measure_call) {
  lv <- sort(unique(as.character(dat[[col]])))
  groups <- lapply(lv, function(l) {
    r <- measure_call(dat[as.character(dat[[col]]) == l, ])
    list(level = l, k = r$k, estimate = r$b[1], se = r$se[1], ci_lb = r$ci.lb[1],
         ci_ub = r$ci.ub[1], tau2 = r$tau2)
  })
  groups
}

ref <- list(metafor_version = as.character(packageVersion("metafor")),
            r_version = R.version.string)

# 1. BCG vaccine (binary 2x2; moderators ablat, year, alloc). Colditz 1994, JAMA 271:698.
bcg <- dat.bcg
names(bcg)[names(bcg) %in% c("tpos", "tneg", "cpos", "cneg")] <- c("ai", "bi", "ci", "di")
save(bcg, "bcg")
ref$bcg <- list(
  file = "bcg.csv", data = "metafor::dat.bcg, tpos/tneg/cpos/cneg renamed ai/bi/ci/di",
  RR = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR")),
  OR = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "OR")),
  RR_ablat = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR",
                     mods = ~ ablat)),
  RR_ablat_knha = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR",
                          mods = ~ ablat, test = "knha")),
  RR_ablat_year = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR",
                          mods = ~ ablat + year)),
  RR_alloc = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR",
                     mods = ~ factor(alloc))),
  RR_alloc_DL = run(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR",
                        mods = ~ factor(alloc), method = "DL")),
  RR_subgroups_alloc = subgroups(bcg, "alloc", function(d)
    rma(ai = ai, bi = bi, ci = ci, di = di, data = d, measure = "RR")))

# 2. Normand 1999 (two-group means: length of stay in days; a column named 'source').
nor <- dat.normand1999
save(nor, "normand1999")
ref$normand1999 <- list(
  file = "normand1999.csv", data = "metafor::dat.normand1999",
  MD = run(rma(m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
               data = nor, measure = "MD")),
  SMD = run(rma(m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
                data = nor, measure = "SMD")),
  MD_knha = run(rma(m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
                    data = nor, measure = "MD", test = "knha")))

# 3. Pritz 1997 (single-group proportions: xi/ni). Logit-transformed proportions.
pritz <- dat.pritz1997
save(pritz, "pritz1997")
ref$pritz1997 <- list(
  file = "pritz1997.csv", data = "metafor::dat.pritz1997",
  PLO = run(rma(xi = xi, ni = ni, data = pritz, measure = "PLO")),
  # the binomial-normal model (exact likelihood, ML; what fit pooled-rate is the Bayesian of)
  PLO_glmm = {r <- rma.glmm(xi = xi, ni = ni, data = pritz, measure = "PLO")
              list(call = "rma.glmm(xi = xi, ni = ni, data = pritz, measure = 'PLO')",
                   estimate = r$b[1], se = r$se, ci_lb = r$ci.lb, ci_ub = r$ci.ub,
                   tau2 = r$tau2, k = r$k)})

# 4. Yusuf 1985, table 6 (beta blockers, events and totals; a row with missing counts and a
#    double-zero study, Pitt 0/9 vs 0/8).
yus <- dat.yusuf1985[dat.yusuf1985$table == "6", c("id", "trial", "ai", "n1i", "ci", "n2i")]
names(yus)[names(yus) == "trial"] <- "study"
save(yus, "yusuf1985_table6")
ref$yusuf1985_table6 <- list(
  file = "yusuf1985_table6.csv",
  data = "metafor::dat.yusuf1985[table == '6'], trial renamed study",
  OR = run(rma(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = yus, measure = "OR")),
  MH = {r <- rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = yus, measure = "OR")
        list(call = "rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = yus, measure = 'OR')",
             estimate = r$b[1], se = r$se, k = r$k)})

# 5. Li 2007 (magnesium after myocardial infarction: rare events, events and totals).
li <- dat.li2007
save(li, "li2007")
ref$li2007 <- list(
  file = "li2007.csv", data = "metafor::dat.li2007",
  OR = run(rma(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = li, measure = "OR")),
  OR_year = run(rma(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = li, measure = "OR",
                    mods = ~ year)))

# 6. Bangert-Drowns 2004 (writing-to-learn: yi/vi standardized mean differences; moderators
#    with missing values).
bd <- dat.bangertdrowns2004
bd <- data.frame(id = bd$id, author = bd$author, year = bd$year, grade = bd$grade,
                 length = bd$length, wic = bd$wic, meta = bd$meta, ni = bd$ni,
                 yi = as.vector(bd$yi), vi = bd$vi)
save(bd, "bangertdrowns2004")
ref$bangertdrowns2004 <- list(
  file = "bangertdrowns2004.csv", data = "metafor::dat.bangertdrowns2004 (some columns)",
  RE = run(rma(yi, vi, data = bd)),
  length = run(rma(yi, vi, mods = ~ length, data = bd)),
  length_knha = run(rma(yi, vi, mods = ~ length, data = bd, test = "knha")),
  grade_factor = run(rma(yi, vi, mods = ~ factor(grade), data = bd)),
  subgroups_meta = subgroups(bd[!is.na(bd$meta), ], "meta", function(d) rma(yi, vi, data = d)),
  meta_factor = run(rma(yi, vi, mods = ~ factor(meta), data = bd)))

# 7. Small-study and publication-bias methods (issue 32): trim-and-fill (L0, R0; side as
#    metafor chooses it), PET and PEESE (meta-regression on the SE and on the variance), and
#    Egger's test in metafor's default form (regtest: rma with the SE as moderator) and the
#    classic one (regtest(model = "lm")). dat.hackshaw1998 (environmental tobacco smoke and
#    lung cancer, log ORs) is metafor's own regtest and trimfill example; bcg.csv as above.
hack <- dat.hackshaw1998[, c("study", "author", "year", "yi", "vi")]
hack$yi <- as.vector(hack$yi)
save(hack, "hackshaw1998")
ref$hackshaw1998 <- list(
  file = "hackshaw1998.csv", data = "metafor::dat.hackshaw1998 (some columns)",
  RE = run(rma(yi, vi, data = hack)))
bias <- function(r) {
  tf <- function(est) {
    t <- trimfill(r, estimator = est)
    list(call = sprintf("trimfill(%s, estimator = '%s')", deparse1(r$call), est),
         estimate = t$b[1], se = t$se, ci_lb = t$ci.lb, ci_ub = t$ci.ub, k0 = t$k0,
         side = t$side, tau2 = t$tau2, filled_yi = as.vector(t$yi[t$fill]))
  }
  pet <- rma(r$yi, r$vi, mods = ~ sqrt(r$vi), method = r$method)
  peese <- rma(r$yi, r$vi, mods = ~ r$vi, method = r$method)
  eg <- regtest(r)
  eglm <- regtest(r, model = "lm")
  list(trimfill_L0 = tf("L0"), trimfill_R0 = tf("R0"),
       pet = list(call = sprintf("rma(yi, vi, mods = ~ sqrt(vi), method = '%s')", r$method),
                  estimate = pet$b[1], se = pet$se[1], ci_lb = pet$ci.lb[1],
                  ci_ub = pet$ci.ub[1], p = pet$pval[1], slope = pet$b[2],
                  slope_p = pet$pval[2]),
       peese = list(call = sprintf("rma(yi, vi, mods = ~ vi, method = '%s')", r$method),
                    estimate = peese$b[1], se = peese$se[1], ci_lb = peese$ci.lb[1],
                    ci_ub = peese$ci.ub[1], p = peese$pval[1]),
       egger_rma = list(call = "regtest(res)", z = eg$zval, p = eg$pval),
       egger_lm = list(call = "regtest(res, model = 'lm')", t = eg$zval * 0 + eglm$zval,
                       df = eglm$dfs, p = eglm$pval))
}
ref$bias <- list(
  hackshaw1998_REML = bias(rma(yi, vi, data = hack)),
  hackshaw1998_FE = bias(rma(yi, vi, data = hack, method = "FE")),
  bcg_RR_REML = bias(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR")),
  bcg_RR_FE = bias(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR",
                       method = "FE")))

# 7b. Step-function selection models (issue 32): selmodel(type = "stepfun"), ML. The first
#     is metafor's own example (help("selmodel"): dat.hackshaw1998, ML, steps .025/.10/.50);
#     the others a REML and an ML model of dat.bangertdrowns2004 and dat.bcg's log risk
#     ratios with selection on the other side (alternative = "less").
sel <- function(r, steps, alternative = "greater") {
  s <- selmodel(r, type = "stepfun", steps = steps, alternative = alternative)
  list(call = sprintf("selmodel(%s, type = 'stepfun', steps = c(%s), alternative = '%s')",
                      deparse1(r$call), paste(steps, collapse = ", "), alternative),
       estimate = s$beta[1], se = s$se, ci_lb = s$ci.lb, ci_ub = s$ci.ub, p = s$pval,
       tau2 = s$tau2, se_tau2 = s$se.tau2, steps = s$steps, delta = s$delta,
       se_delta = s$se.delta, k = s$ptable$k, LRT = s$LRT, LRTdf = s$LRTdf, LRTp = s$LRTp,
       ll = s$ll)
}
ref$selmodel <- list(
  hackshaw1998_ML = sel(rma(yi, vi, data = hack, method = "ML"), c(.025, .10, .50, 1)),
  bangertdrowns2004_REML = sel(rma(yi, vi, data = bd), c(.025, .5)),
  bangertdrowns2004_ML = sel(rma(yi, vi, data = bd, method = "ML"), c(.05, .5)),
  bcg_RR_REML_less = sel(rma(ai = ai, bi = bi, ci = ci, di = di, data = bcg, measure = "RR"),
                         c(.025), "less"))

# 8. Dependent effects (issue 32): three-level models and cluster-robust errors.
#    dat.konstantopoulos2011 (schools within districts) and dat.assink2016 (effects within
#    studies) are metafor's own rma.mv examples.
kon <- dat.konstantopoulos2011
save(kon, "konstantopoulos2011")
ass <- dat.assink2016
save(ass, "assink2016")
ml <- function(r, call) list(call = call, estimate = r$b[1], se = r$se, ci_lb = r$ci.lb,
                             ci_ub = r$ci.ub, sigma2 = r$sigma2, k = r$k)
rb <- function(r, call) list(call = call, estimate = as.vector(r$b), se = r$se,
                             ci_lb = r$ci.lb, ci_ub = r$ci.ub, p = r$pval, df = r$dfs,
                             n = r$n, QM = r$QM, QMp = r$QMp)
ref$konstantopoulos2011 <- list(
  file = "konstantopoulos2011.csv", data = "metafor::dat.konstantopoulos2011",
  multilevel = ml(rma.mv(yi, vi, random = ~ 1 | district/school, data = kon),
                  "rma.mv(yi, vi, random = ~ 1 | district/school, data = kon)"),
  robust = rb(robust(rma(yi, vi, data = kon), cluster = district, clubSandwich = FALSE),
              "robust(rma(yi, vi, data = kon), cluster = district, clubSandwich = FALSE)"),
  robust_year = rb(robust(rma(yi, vi, mods = ~ year, data = kon), cluster = district,
                          clubSandwich = FALSE),
                   "robust(rma(yi, vi, mods = ~ year, data = kon), cluster = district, clubSandwich = FALSE)"))
ref$assink2016 <- list(
  file = "assink2016.csv", data = "metafor::dat.assink2016",
  multilevel = ml(rma.mv(yi, vi, random = ~ 1 | study/esid, data = ass),
                  "rma.mv(yi, vi, random = ~ 1 | study/esid, data = ass)"),
  robust = rb(robust(rma(yi, vi, data = ass), cluster = study, clubSandwich = FALSE),
              "robust(rma(yi, vi, data = ass), cluster = study, clubSandwich = FALSE)"))

# 8b. Single-arm proportions nested in countries (issue 32, the Bayesian pooled-rate's
#     --cluster): dat.hannum2020 (olfactory loss in COVID-19, 35 studies in 22 countries as
#     the data spell them). The reference is the binomial GLMM by Laplace ML (lme4).
suppressMessages(library(lme4))
han <- dat.hannum2020[, c("authorName", "country", "xi", "ni")]
save(han, "hannum2020")
han$row <- seq_len(nrow(han))
g <- glmer(cbind(xi, ni - xi) ~ 1 + (1 | country/row), family = binomial, data = han)
vc <- as.data.frame(VarCorr(g))
ref$hannum2020 <- list(
  file = "hannum2020.csv", data = "metafor::dat.hannum2020 (some columns)",
  glmer = list(call = "glmer(cbind(xi, ni - xi) ~ 1 + (1 | country/row), family = binomial, data = han)",
               lme4 = as.character(packageVersion("lme4")),
               estimate = unname(fixef(g)[1]), se = unname(sqrt(vcov(g)[1, 1])),
               sd_country = vc$sdcor[vc$grp == "country"],
               sd_study = vc$sdcor[vc$grp == "row:country"]))

cat(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"))
cat("\n")
