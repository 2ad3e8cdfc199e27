# Reference numbers for tests/test_hierarchical.py, from R's mclust.
# Regenerate (from the repository root): Rscript tests/data/mclust_hc_reference.R
# Needs R with the mclust and jsonlite packages; writes tests/data/mclust_hc_reference.json.
library(mclust)
library(jsonlite)
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE",
            "EEV", "VEV", "EVV", "VVV")
# EM run to its fixed point, so that the BIC grid does not depend on a stopping rule
tight <- emControl(tol = c(1e-13, 1e-14), itmax = c(1e5, 1e5))
data_sets <- list(faithful = as.matrix(faithful), iris = as.matrix(iris[, 1:4]))
out <- list(R = R.version.string, mclust = as.character(packageVersion("mclust")),
            hc = list(modelName = mclust.options("hcModelName"), use = mclust.options("hcUse")),
            data = list())
for (name in names(data_sets)) {
  X <- data_sets[[name]]
  # what mclustBIC runs (hc's own default is use = "VARS")
  tree <- hc(X, modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"))
  partitions <- hclass(tree, 1:9)                # n x 9
  grid <- mclustBIC(X, G = 1:9, modelNames = models, control = tight)
  out$data[[name]] <- list(
    partitions = lapply(1:9, function(G) unname(partitions[, G])),
    bic_grid = lapply(models, function(m) unname(grid[, m])))  # NA: mclust could not fit
  names(out$data[[name]]$bic_grid) <- models
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/data/mclust_hc_reference.json")
