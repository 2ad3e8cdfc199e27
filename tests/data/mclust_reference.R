# Reference numbers for tests/test_parsimonious.py, from R's mclust.
# Regenerate (from the repository root): Rscript tests/data/mclust_reference.R
# Needs R with the mclust and jsonlite packages; writes tests/data/mclust_reference.json.
library(mclust)
library(jsonlite)
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE",
            "EEV", "VEV", "EVV", "VVV")
ctrl <- emControl(tol = c(1e-14, 1e-14), itmax = c(1e5, 1e5))
# me() with itmax[1] = 6 returns the parameters after 5 EM iterations from the
# start (GaussianMixture(max_iter=5)) and their log-likelihood.
fixed <- emControl(tol = c(0, 1e-14), itmax = c(6, 1e5))
summary_of <- function(fit, m, n, d, G) {
  sigma <- fit$parameters$variance$sigma
  list(loglik = fit$loglik,
       iterations = as.numeric(attr(fit, "info")[1]),
       bic = bic(m, fit$loglik, n, d, G),
       n_parameters = nMclustParams(m, d, G),
       weights = unname(fit$parameters$pro),
       means = unname(t(fit$parameters$mean)),                      # G x d
       covariances = lapply(1:G, function(k) unname(sigma[, , k])))  # G of d x d
}
starts <- list(
  faithful = list(data = as.matrix(faithful),
                  cl = 1 + (faithful$eruptions > 3) + (faithful$waiting > 80)),
  iris = list(data = as.matrix(iris[, 1:4]), cl = as.integer(iris$Species)))
out <- list(R = R.version.string, mclust = as.character(packageVersion("mclust")),
            control = list(tol = ctrl$tol, itmax = ctrl$itmax), data = list())
for (name in names(starts)) {
  X <- starts[[name]]$data; cl <- starts[[name]]$cl
  n <- nrow(X); d <- ncol(X); G <- max(cl)
  fits <- list(); five <- list()
  for (m in models) {
    fits[[m]] <- summary_of(me(modelName = m, data = X, z = unmap(cl), control = ctrl),
                            m, n, d, G)
    five[[m]] <- summary_of(me(modelName = m, data = X, z = unmap(cl), control = fixed),
                            m, n, d, G)
  }
  bic1 <- mclustBIC(X, G = 1, modelNames = models)
  grid <- mclustBIC(X, G = 1:9, modelNames = models)   # mclust's own (hc) initialisation
  best <- summary(grid)[1]
  out$data[[name]] <- list(n_components = G, fits = fits, five_iterations = five,
                           bic_one_component = as.list(bic1[1, models]),
                           bic_grid = lapply(models, function(m) unname(grid[, m])),
                           bic_grid_best = list(name = names(best), value = unname(best)))
}
out$n_parameters <- lapply(models, function(m)
  sapply(1:4, function(G) sapply(1:5, function(d) nMclustParams(m, d, G))))
names(out$n_parameters) <- models                                  # d (rows) x G (columns)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/mclust_reference.json")
