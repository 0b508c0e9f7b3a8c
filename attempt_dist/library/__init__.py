"""The paper's source-prompt library and the pipeline that builds it (sources, priors, SPoT)."""
