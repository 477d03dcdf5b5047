"""Getting work done: the build pipeline, the job queue, the worker, executors, grids and the CLI."""
