"""tunix-datasets: the built-in reasoning datasets, their row transforms and answer checks,
and the ``tunix datasets`` commands."""
