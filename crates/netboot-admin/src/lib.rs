//! Reports page, JSON API and Prometheus metrics over the boot records (in progress).
