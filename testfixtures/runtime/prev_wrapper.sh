#!/bin/sh
# A function's own exec wrapper from before plldb: it sets a variable, leaves a marker, and runs the runtime.
export PREV_WRAPPER_RAN=yes
if [ -n "$PREV_WRAPPER_MARKER" ]; then
	echo "$*" >"$PREV_WRAPPER_MARKER"
fi
exec "$@"
