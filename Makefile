# The two commands of README's quick start. Everything else is meson.
.PHONY: all demo test clean

all:
	@sh .ci/deps.sh build
	@[ -f build/build.ninja ] || meson setup build
	ninja -C build

# The main job: echod on its built-in defaults (one echo listener on
# 127.0.0.1:7007), echoload against it for five seconds, the report.
demo: all
	@if ./build/client/echoload -q -n 1 -c 1 -t 1 >/dev/null 2>&1; then \
		echo "something already serves 127.0.0.1:7007; stop it first" >&2; \
		exit 1; fi; \
	./build/server/echod -f & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	i=0; until ./build/client/echoload -q -n 1 -c 1 -t 1 >/dev/null 2>&1; do \
		kill -0 $$pid 2>/dev/null || { echo "echod did not start" >&2; exit 1; }; \
		i=$$((i + 1)); [ $$i -lt 50 ] || { echo "echod did not start" >&2; exit 1; }; \
		sleep 0.1; done; \
	./build/client/echoload -d 5s -c 50 127.0.0.1:7007

test:
	@sh .ci/deps.sh build test
	bash tests/run.sh

clean:
	rm -rf build build-asan
