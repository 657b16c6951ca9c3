# Independent reference for trialmeta's Emax dose-response model: the same model and
# priors in JAGS (as R MBNMAdose runs its models), on tests/reference/dose_sim.csv.
# Run:  Rscript tests/reference/make_jags_dose_reference.R > tests/reference/jags-dose-emax.json
# (Debian: apt-get install jags r-cran-rjags; never a runtime dependency of trialmeta.)
suppressMessages({library(rjags); library(coda); library(jsonlite)})
d <- read.csv("tests/reference/dose_sim.csv")
pos <- sort(unique(d$dose[d$dose > 0]))
model <- "
model {
  theta ~ dnorm(0, 1 / (2.5 * 2.5))
  tau ~ dnorm(0, 1 / (0.5 * 0.5)) T(0,)
  log_ed50 ~ dnorm(log(d_mid), 1)
  ed50 <- exp(log_ed50)
  for (s in 1:S) {
    z[s] ~ dnorm(0, 1)
    alpha[s] ~ dnorm(0, 1 / (2.5 * 2.5))
  }
  for (j in 1:J) {
    logit(p[j]) <- alpha[study[j]] + (theta + tau * z[study[j]]) * dose[j] / (ed50 + dose[j])
    events[j] ~ dbin(p[j], n[j])
  }
}"
data <- list(S = max(d$study), J = nrow(d), study = d$study, dose = d$dose, n = d$n,
             events = d$events, d_mid = median(pos))
inits <- lapply(1:4, function(i) list(.RNG.name = "base::Mersenne-Twister", .RNG.seed = i))
m <- jags.model(textConnection(model), data = data, inits = inits, n.chains = 4, quiet = TRUE)
update(m, 5000, progress.bar = "none")
s <- coda.samples(m, c("theta", "tau", "ed50"), n.iter = 50000, thin = 5, progress.bar = "none")
x <- as.matrix(s)
ess <- effectiveSize(s)
out <- list(call = "rjags: 4 chains, 5000 adaptation/burn-in, 50000 iterations thinned by 5",
            jags = as.character(packageVersion("rjags")), d_mid = median(pos))
for (v in c("theta", "tau", "ed50")) {
  out[[v]] <- list(mean = mean(x[, v]), sd = sd(x[, v]), ess = unname(ess[v]),
                   mcse = sd(x[, v]) / sqrt(unname(ess[v])),
                   median = median(x[, v]))
}
out$log_ed50 <- list(mean = mean(log(x[, "ed50"])), sd = sd(log(x[, "ed50"])),
                     mcse = sd(log(x[, "ed50"])) / sqrt(unname(ess["ed50"])))
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE))
