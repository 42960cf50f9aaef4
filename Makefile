# crisp - one non-recursive Makefile.
#   make            build crispd (and the tools) into build/
#   make run        install missing Debian packages, build, run crispd in the foreground
#   make test       install, build, run unit tests (plain and ASan/UBSan) and integration tests
#   make bench      benchmarks against Debian's containerd in the same run
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 30)
#   make soak       the crash and load suites' long variants (50 restarts, 200 pods, 10,000 cycles)
#   make deps       install missing Debian packages
#   make install    install binaries, default config and the systemd unit
SHELL := /bin/bash
# V=1 shows full compiler command lines
Q := $(if $(filter 1,$(V)),,@)
B ?= build
PREFIX ?= /usr/local
PY := /usr/bin/python3
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)

PKGS_BUILD := build-essential g++ pkg-config libgrpc-dev libabsl-dev protobuf-c-compiler libprotobuf-c-dev \
  libcurl4-openssl-dev libarchive-dev libyajl-dev libcriterion-dev libseccomp-dev libssl-dev \
  zlib1g-dev
PKGS_TEST := python3 python3-grpcio python3-grpc-tools python3-pytest python3-yaml iproute2 util-linux procps \
  busybox-static iptables skopeo umoci docker-registry jq apache2-utils
PKGS_BENCH := containerd bc
PKGS_FUZZ := clang
PKGS_RUN := containernetworking-plugins

LIBS_PC := grpc libprotobuf-c yajl
CPPFLAGS += -I. -I$(B)/gen -DCRISP_VERSION='"$(VERSION)"' -include base/banned.h
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wswitch-enum -Wmissing-prototypes \
  -Wjump-misses-init \
  -Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -pthread -fno-strict-aliasing -ffunction-sections -fdata-sections
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS := -lgrpc -lgpr -lprotobuf-c -lyajl -lcurl -larchive -lcrypto -lseccomp -lz -pthread
# crispd itself links no libcurl, libarchive or libseccomp (pulls and containers run in
# helper processes) and is linked fully static (the grpc core "unsecure" build: a unix
# socket needs no TLS) with --gc-sections: shared libraries cost RSS in relocations and
# mapped pages before serving anything (the shared libgrpc alone ~9 MiB; libc+libm ~2).
# crispd does no name lookups (a unix socket, numeric ids), so static glibc's NSS
# caveats (getaddrinfo, getpwnam) never apply. See README "Memory".
GRPC_STATIC := $(shell pkg-config --static --libs grpc_unsecure 2>/dev/null) -lupb -lre2 -lcares \
  -laddress_sorting -lz
ifeq ($(SAN),1)
CRISPD_LD := $(CC)
CRISPD_LDLIBS := -lgrpc -lgpr -labsl_synchronization -lprotobuf-c -lyajl -lcrypto -lseccomp -lz -pthread
else
CRISPD_LD := $(CXX)
CRISPD_LDLIBS := -static -Wl,--gc-sections $(GRPC_STATIC) -lprotobuf-c -lyajl_s -lcrypto -lseccomp -lm -pthread
# the code and read-only data crispd touches while serving, gathered in 64 KiB-aligned
# sections (generated from profiles by test/bench/hot_text.sh, which reads the link map
# bin/crispd.map; README "Memory")
CRISPD_LDLIBS += -Wl,-T,cmd/crispd-hot.ld
CRISPD_LDDEPS := cmd/crispd-hot.ld
CRISPD_MAP = -Wl,-Map=$@.map
endif

# --- sources, one static library per folder ----------------------------------
base_SRC := $(wildcard base/*.c)
net_SRC := $(wildcard net/*.c)
runtimes_SRC := $(wildcard runtimes/*.c)
image_SRC := $(wildcard image/*.c)
sandbox_SRC := $(wildcard sandbox/*.c)
cri_SRC := $(wildcard cri/*.c)
GEN_C := $(B)/gen/cri/api.pb-c.c
GEN_H := $(B)/gen/cri/api.pb-c.h

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
LIB_BASE := $(B)/lib/libbase.a
LIB_NET := $(B)/lib/libnet.a
LIB_RUNTIMES := $(B)/lib/libruntimes.a
LIB_IMAGE := $(B)/lib/libimage.a
LIB_SANDBOX := $(B)/lib/libsandbox.a
LIB_CRI := $(B)/lib/libcri.a
# link order: dependents first
LIBS_ALL := $(LIB_CRI) $(LIB_IMAGE) $(LIB_RUNTIMES) $(LIB_SANDBOX) $(LIB_NET) $(LIB_BASE)

BINS := $(B)/bin/crispd $(B)/bin/crisp-pull $(B)/bin/crisp-monitor $(B)/bin/crisp-sandbox

.PHONY: soak all run test unit unit-plain unit-asan integration integration-asan bench bench-sandbox fuzz fuzz-deps deps deps-test install clean \
  fmt-check
all: $(BINS)

$(GEN_C) $(GEN_H) &: cri/api.proto
	@mkdir -p $(B)/gen/cri
	protoc-c --c_out=$(B)/gen/cri -Icri cri/api.proto

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

# crisp's one C++ file (cmd/absl_mode.cc: abseil has no C API), without banned.h
$(B)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	$(Q)$(CXX) -I. $(filter-out -std=c11,$(CFLAGS)) -std=c++17 -fno-exceptions -fno-rtti \
	  $(filter-out -Wjump-misses-init -Wmissing-prototypes,$(WARN)) -MMD -MP -c $< -o $@

# generated code: compiled without the project's stricter warnings
$(B)/obj/gen/api.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Wall -c $< -o $@

$(call obj,$(cri_SRC)): $(GEN_H)

$(LIB_BASE): $(call obj,$(base_SRC))
$(LIB_NET): $(call obj,$(net_SRC))
$(LIB_RUNTIMES): $(call obj,$(runtimes_SRC))
$(LIB_IMAGE): $(call obj,$(image_SRC))
$(LIB_SANDBOX): $(call obj,$(sandbox_SRC))
$(LIB_CRI): $(call obj,$(cri_SRC)) $(B)/obj/gen/api.pb-c.o
# a folder with no sources yet still gets an (empty) archive, so link lines stay fixed
$(B)/lib/%.a:
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

CRISPD_LIBS := $(LIB_CRI) $(LIB_IMAGE) $(LIB_RUNTIMES) $(LIB_SANDBOX) $(LIB_NET) $(LIB_BASE)
# crispd-split: crispd for hot_text.sh's profile of the data it reads (test/bench/hot_split.c)
$(B)/bin/crispd-split: $(call obj,test/bench/hot_split.c)
$(B)/bin/crispd $(B)/bin/crispd-split: $(call obj,cmd/crispd.c cmd/crispd_images.c) $(B)/obj/cmd/absl_mode.o \
  $(CRISPD_LIBS) $(CRISPD_LDDEPS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)set -o pipefail; $(CRISPD_LD) $(filter-out -std=c11,$(CFLAGS)) $(LDFLAGS) -o $@ $(filter-out %.ld,$^) \
	  $(CRISPD_LDLIBS) $(CRISPD_MAP) 2>&1 | { grep -v -e 'statically linked applications requires at runtime' \
	  -e ': in function' || true; }

# the pull helper: the network and untrusted tarballs live here, not in crispd
$(B)/bin/crisp-pull: $(call obj,cmd/crisp-pull.c) $(LIB_IMAGE) $(LIB_BASE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcurl -larchive -lcrypto -lyajl -pthread

# the container monitor, one process per container: static (no shared-library mappings
# or relocations) with --gc-sections, so a live monitor stays under 1 MiB of RSS; glibc
# static is fine, the monitor does no NSS lookups (users are numbers by then). ASan
# cannot link statically, so the SAN build is dynamic.
ifeq ($(SAN),1)
MONITOR_LDFLAGS :=
MONITOR_LDLIBS := -lyajl -lseccomp -pthread
else
MONITOR_LDFLAGS := -static -Wl,--gc-sections
MONITOR_LDLIBS := -lyajl_s -lseccomp -pthread
endif
$(B)/bin/crisp-monitor: $(call obj,cmd/crisp-monitor.c) $(LIB_RUNTIMES) $(LIB_SANDBOX) $(LIB_BASE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(MONITOR_LDFLAGS) -o $@ $^ $(MONITOR_LDLIBS)
# the sandbox as a command (like `runsc do`): static like the monitor it is part of
$(B)/bin/crisp-sandbox: $(call obj,cmd/crisp-sandbox.c) $(LIB_SANDBOX) $(LIB_BASE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(MONITOR_LDFLAGS) -o $@ $^ $(MONITOR_LDLIBS)
# sandbox test programs: static, so they run the same natively, under crisp-sandbox,
# under runsc and in pods (never sanitized: ASan cannot link statically)
SBX_PROG_CFLAGS := -O2 -g -std=c11 -D_GNU_SOURCE -pthread
$(B)/bin/escape: test/sandbox/escape.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(SBX_PROG_CFLAGS) $(WARN) -static -o $@ $<
$(B)/bin/sbx_micro: test/bench/sbx_micro.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(SBX_PROG_CFLAGS) $(WARN) -static -o $@ $<
SANDBOX_TEST_BINS := $(B)/bin/escape $(B)/bin/sbx_micro
# the unit tests run the real monitor (order-only: it is not linked into them)
$(B)/bin/unit-tests: | $(B)/bin/crisp-monitor

# --- tests --------------------------------------------------------------------
UNIT_SRC := $(wildcard test/unit/*.c)
$(B)/bin/unit-tests: $(call obj,$(UNIT_SRC)) $(B)/obj/cmd/absl_mode.o $(LIBS_ALL)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -labsl_synchronization -lcriterion
$(call obj,$(UNIT_SRC)): $(GEN_H)

PYGEN := $(B)/py/api_pb2.py
$(PYGEN): cri/api.proto
	@mkdir -p $(B)/py
	$(PY) -m grpc_tools.protoc -Icri --python_out=$(B)/py --grpc_python_out=$(B)/py cri/api.proto

unit-plain: $(B)/bin/unit-tests
	$(B)/bin/unit-tests --jobs 2
unit-asan:
	$(MAKE) --no-print-directory B=$(B)/asan SAN=1 unit-plain
unit: unit-plain unit-asan

# crisp-pleg: the load suite's status pollers (a C client, so Python's GIL is not measured)
$(B)/bin/crisp-pleg: $(call obj,test/bench/crisp-pleg.c)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lgrpc -lgpr -pthread
export CRISP_PLEG := $(abspath $(B)/bin/crisp-pleg)

integration: $(BINS) $(SANDBOX_TEST_BINS) $(PYGEN) $(B)/bin/crisp-pleg
	CRISPD=$(abspath $(B)/bin/crispd) CRISP_PYGEN=$(abspath $(B)/py) \
	  $(PY) -m pytest -q -p no:cacheprovider test/integration $(PYTEST_ARGS)
# the same suite against an ASan/UBSan crispd: any memory error or leak makes crispd
# exit non-zero, which the harness's teardown turns into a failure
integration-asan: $(PYGEN) $(B)/bin/crisp-pleg
	$(MAKE) --no-print-directory B=$(B)/asan SAN=1 $(B)/asan/bin/crispd $(B)/asan/bin/crisp-pull \
	  $(B)/asan/bin/crisp-monitor $(B)/asan/bin/crisp-sandbox $(B)/asan/bin/escape \
	  $(B)/asan/bin/sbx_micro
	CRISPD=$(abspath $(B)/asan/bin/crispd) CRISP_PYGEN=$(abspath $(B)/py) \
	  $(PY) -m pytest -q -p no:cacheprovider test/integration $(PYTEST_ARGS)

test: deps-test
	$(MAKE) --no-print-directory all unit integration integration-asan

# the long variants: 50 SIGKILL restarts, 200 pods under 50 pollers, 10,000 cycles
soak: deps-test $(BINS) $(PYGEN) $(B)/bin/crisp-pleg
	CRISP_SOAK=1 CRISPD=$(abspath $(B)/bin/crispd) CRISP_PYGEN=$(abspath $(B)/py) \
	  $(PY) -m pytest -q -s -p no:cacheprovider test/integration/test_crash.py \
	  test/integration/test_load.py $(PYTEST_ARGS)

# --- benchmarks ---------------------------------------------------------------
$(B)/bin/crisp-bench: $(call obj,test/bench/crisp-bench.c)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lgrpc -lgpr
$(call obj,test/bench/crisp-bench.c): $(GEN_H)

bench: deps-test $(BINS) $(B)/bin/crisp-bench $(SANDBOX_TEST_BINS) $(PYGEN)
	@$(call apt_missing,$(PKGS_BENCH))
	test/bench/run.sh $(abspath $(B))
	test/bench/pull.sh $(abspath $(B))
	BENCH_LC_SANDBOX=$${BENCH_LC_SANDBOX-runsc} test/bench/lifecycle.sh $(abspath $(B))
	BENCH_LC_SANDBOX=$${BENCH_LC_SANDBOX-runsc} test/bench/streaming.sh $(abspath $(B))
	test/bench/sandbox.sh $(abspath $(B))
# the sandbox alone: native vs crisp-sandbox vs runsc (ptrace platform)
bench-sandbox: $(B)/bin/crisp-sandbox $(SANDBOX_TEST_BINS)
	test/bench/sandbox.sh $(abspath $(B))

# --- fuzzing (libFuzzer, clang) -------------------------------------------------
# make fuzz runs every target for FUZZ_SECONDS on a copy of its seed corpus
# (test/fuzz/corpus/<name>); a crash leaves its input in $(B)/fuzz/ and fails the run.
FUZZ_SECONDS ?= 30
# one target alone: FUZZ_SECONDS_<target>=N (e.g. make fuzz FUZZ_SECONDS_request=300)
FUZZ_TARGETS := ref config manifest unpack request records seccomp cni_result spdy http \
  monitor_state stream
fuzz_ref_SRC := image/ref.c $(base_SRC)
fuzz_manifest_SRC := image/manifest.c image/image_config.c $(base_SRC)
fuzz_unpack_SRC := image/unpack.c image/unpack_fs.c $(base_SRC)
fuzz_config_SRC := cri/config.c runtimes/handlers.c $(base_SRC)
fuzz_request_SRC := cri/request_check.c cri/pb_wire.c cri/stream_util.c $(wildcard cri/ctrspec*.c) $(GEN_C) runtimes/spec.c \
  runtimes/cgroup_name.c \
  runtimes/spec_json.c runtimes/handlers.c image/manifest.c image/image_config.c net/podfiles.c \
  net/sysctl_ns.c net/mnt.c $(base_SRC)
fuzz_records_SRC := cri/objects.c $(GEN_C) $(filter-out image/pull%,$(wildcard image/store*.c)) \
  image/ref.c $(base_SRC)
fuzz_seccomp_SRC := runtimes/seccomp.c runtimes/seccomp_profile.c runtimes/ns_priv.c $(base_SRC)
fuzz_cni_result_SRC := $(wildcard net/cni*.c) net/cidr.c $(base_SRC)
fuzz_spdy_SRC := cri/stream_spdy_frame.c cri/stream_spdy_dict.c $(base_SRC)
fuzz_http_SRC := cri/stream_http.c $(base_SRC)
fuzz_monitor_state_SRC := runtimes/monitor_files.c $(base_SRC)
fuzz_stream_SRC := $(wildcard cri/stream_*.c) $(base_SRC)
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I. -I$(B)/gen -include base/banned.h
define fuzz_rule
$(B)/fuzz/fuzz_$(1): test/fuzz/fuzz_$(1).c $$(fuzz_$(1)_SRC)
	@mkdir -p $$(dir $$@)
	@echo "  FUZZ-CC $$@"
	$$(Q)clang $$(FUZZ_CFLAGS) -o $$@ $$^ -lyajl -lcrypto -larchive -lcurl -lprotobuf-c -lseccomp -lz
endef
$(B)/fuzz/fuzz_request $(B)/fuzz/fuzz_records: | $(GEN_H)
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

fuzz-deps:
	@$(call apt_missing,$(PKGS_FUZZ))
fuzz: fuzz-deps
	$(MAKE) --no-print-directory $(foreach t,$(FUZZ_TARGETS),$(B)/fuzz/fuzz_$(t))
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(B)/fuzz/corpus-$$t && cp -r test/fuzz/corpus/$$t $(B)/fuzz/corpus-$$t && \
	  secs=$$(eval echo \$${FUZZ_SECONDS_$$t:-$(FUZZ_SECONDS)}); \
	  echo "fuzz $$t for $${secs}s" && \
	  (cd $(B)/fuzz && set -o pipefail && ./fuzz_$$t -max_total_time=$$secs \
	    -print_final_stats=1 corpus-$$t 2>&1 | grep -E 'number_of_executed_units|ERROR|SUMMARY|==') \
	  || { echo "fuzz $$t FAILED (crash input in $(B)/fuzz)"; exit 1; }; \
	done

# --- packages -----------------------------------------------------------------
define apt_missing
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
  echo "installing Debian packages:" $$missing; \
  export DEBIAN_FRONTEND=noninteractive; \
  apt-get install -y -qq $$missing >/dev/null || { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }; \
fi
endef

deps:
	@$(call apt_missing,$(PKGS_BUILD) $(PKGS_RUN))
deps-test:
	@$(call apt_missing,$(PKGS_BUILD) $(PKGS_RUN) $(PKGS_TEST))

# make run: a node with no CNI network config gets crisp's default (bridge + host-local +
# portmap on 10.88.0.0/16), so pods get addresses on a fresh machine
CNI_CONF_DIR ?= /etc/cni/net.d
run: deps
	$(MAKE) --no-print-directory all
	@if ! ls $(CNI_CONF_DIR)/*.conf $(CNI_CONF_DIR)/*.conflist $(CNI_CONF_DIR)/*.json >/dev/null 2>&1; then \
	  echo "installing deploy/cni/10-crisp.conflist into $(CNI_CONF_DIR)"; \
	  install -D -m 0644 deploy/cni/10-crisp.conflist $(CNI_CONF_DIR)/10-crisp.conflist; fi
	$(B)/bin/crispd $(RUN_ARGS)

install: all
	install -D -m 0755 $(B)/bin/crispd $(DESTDIR)$(PREFIX)/bin/crispd
	install -D -m 0755 $(B)/bin/crisp-pull $(DESTDIR)$(PREFIX)/bin/crisp-pull
	install -D -m 0755 $(B)/bin/crisp-monitor $(DESTDIR)$(PREFIX)/bin/crisp-monitor
	install -D -m 0644 deploy/crispd.service $(DESTDIR)/etc/systemd/system/crispd.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/crisp/README.md
	install -D -m 0644 deploy/kubelet.md $(DESTDIR)$(PREFIX)/share/doc/crisp/kubelet.md
	[ -e $(DESTDIR)/etc/crisp/config.json ] || install -D -m 0644 deploy/config.json $(DESTDIR)/etc/crisp/config.json
	[ -e $(DESTDIR)/etc/crictl.yaml ] || install -D -m 0644 deploy/crictl.yaml $(DESTDIR)/etc/crictl.yaml

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
