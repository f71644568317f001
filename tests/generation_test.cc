// /api/suites and /api/generation through a real daemon.
