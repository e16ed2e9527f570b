#!/bin/sh
# The image's entrypoint: `docker run IMAGE [COMMAND [ARGS...]]`.
#
#   (no command), serve [...]   migrate (under PostgreSQL's advisory lock, so replicas take turns), then serve
#   worker, retention ..., notices mail, migrate, check, token ..., audit verify|checkpoint, demo, openapi
#                               that `privacy` command (docs/operations.md#command-line)
#   -...                        options for `privacy serve`
#   anything else               run as given (sh, python, ...)
#
# The settings come from the environment (docs/configuration.md). The image sets PRIVACY_ENV=production, so
# `privacy` refuses to start with a development default, SQLite, the console mailer, a missing receipt key
# or no public base URL, and says which. `check` tells without starting anything.
set -eu

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve | worker | retention | notices | migrate | check | token | audit | demo | openapi)
        exec privacy "$@"
        ;;
    -*)
        exec privacy serve "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
