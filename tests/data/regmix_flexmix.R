# Reference fits of R's flexmix for tests/test_regression_mixture.py::test_fixed_point_matches_flexmix
# (R 4.2.2, flexmix 2.3.18; Debian's r-base-core and r-cran-flexmix).  The data are those of
# tests/data/regmix_mixtools.json, written to data.csv by
#     python -c "import json, csv; d = json.load(open('tests/data/regmix_mixtools.json'));
#       w = csv.writer(open('data.csv', 'w', newline='')); w.writerow(['x1', 'x2', 'yg', 'yl', 'yp']);
#       [w.writerow([*d['x'][i], d['y_gaussian'][i], d['y_logistic'][i], d['y_poisson'][i]])
#        for i in range(len(d['x']))]"
# then `Rscript regmix_flexmix.R`; its printed numbers are tests/data/regmix_flexmix.json.
# flexmix starts from posteriors, not parameters: the posteriors of the E-step at the
# mixtools test's start (lambda0, beta0), so its first M-step is emfast's first M-step from
# coef_init / intercept_init / weights_init.  Only the logistic and Poisson experts: flexmix's
# gaussian sigma divides by the residual degrees of freedom (not the maximum likelihood
# estimate), so its fixed point is not EM's.
library(flexmix)
d <- read.csv("data.csv")
x <- cbind(1, d$x1, d$x2)
beta0 <- rbind(c(0.5, 1.5, -0.5), c(0, -0.5, 0.2))   # rows: components; intercept, x1, x2
lambda0 <- c(0.4, 0.6)
posterior <- function(dens) {                          # the E-step at the start
  p <- sweep(dens, 2, lambda0, "*")
  p / rowSums(p)
}
eta <- x %*% t(beta0)
start <- list(
  binomial = posterior(plogis(eta)^d$yl * (1 - plogis(eta))^(1 - d$yl)),
  poisson = posterior(dpois(d$yp, exp(eta))))
control <- list(iter.max = 100000, tolerance = 1e-14, minprior = 0)
fits <- list(
  logistic = flexmix(cbind(yl, 1 - yl) ~ x1 + x2, data = d, k = 2, cluster = start$binomial,
                     model = FLXMRglm(family = "binomial"), control = control),
  poisson = flexmix(yp ~ x1 + x2, data = d, k = 2, cluster = start$poisson,
                    model = FLXMRglm(family = "poisson"), control = control))
for (name in names(fits)) {
  f <- fits[[name]]
  cat(name, "iterations", f@iter, "\n")
  cat(name, "loglik", sprintf("%.17g", as.numeric(logLik(f))), "\n")
  cat(name, "prior", sprintf("%.17g", prior(f)), "\n")
  b <- parameters(f)                                   # rows: intercept, x1, x2
  for (k in 1:2) cat(name, "beta", k, sprintf("%.17g", b[, k]), "\n")
}
