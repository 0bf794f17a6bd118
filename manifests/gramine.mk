# Gramine targets for the enclave. The top-level Makefile does `include manifests/gramine.mk`
# and provides $(VENV)/.stamp (the dev venv). Run everything from the project root: the manifest
# trusts enclave/ and protocol/ (the TCB) by paths relative to the working directory.
#
#   make enclave-venv          minimal venv for the enclave (numpy, cryptography, msgpack only)
#   make gramine-check         render + check the manifest for sgx and direct, without Gramine
#   make gramine-manifest      render with the real gramine-manifest (SGX=1 for the sgx profile)
#   make gramine-direct        host + demo with the enclave under gramine-direct (no SGX)
#   SGX=1 make gramine-sgx     sign, print the measurement, host + demo under gramine-sgx
#   make measurement           MRENCLAVE/MRSIGNER of the signed enclave + its bill of materials
#   make gramine-bom           the bill of materials of the stand-in render (no Gramine needed)
#   make gramine-clean         build/gramine and the sealed state of both Gramine modes

VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
ENCLAVE_VENV ?= .venv-enclave
ENCLAVE_PYTHON := $(ENCLAVE_VENV)/bin/python
# The enclave runs CPython 3.11 (the template trusts cpython-311 byte-code).
PYTHON311 ?= python3.11

SGX ?= 0
DEBUG ?= 0
RA_TYPE ?= dcap
ARCH_LIBDIR ?= /lib/$(shell $(CC) -dumpmachine)
GRAMINE_MODE := $(if $(filter 1,$(SGX)),sgx,direct)
GRAMINE_DEBUG := $(if $(filter 1,$(DEBUG)),true,false)
GRAMINE_LOG_LEVEL := $(if $(filter 1,$(DEBUG)),debug,error)

MANIFEST_TEMPLATE := manifests/cleanroom-enclave.manifest.template
# The trusted code base: the template trusts every .py under these folders (and nothing else).
TCB_DIRS := enclave protocol
GRAMINE_BUILD ?= build/gramine
# gramine-direct/gramine-sgx take this path minus the .manifest(.sgx) suffix.
GRAMINE_APP = $(GRAMINE_BUILD)/$(1)/cleanroom-enclave
# Sealed state, one directory per mode: the two modes encrypt with different keys. The path is
# rendered into the manifest, so it is part of MRENCLAVE; every host started from this checkout
# shares it (the host's --state-dir has no effect under Gramine; docs/gramine.md).
STATE_DIR_sgx ?= state/gramine-sgx
STATE_DIR_direct ?= state/gramine-direct
# Empty: gramine-sgx-sign's default key ($XDG_CONFIG_HOME/gramine/enclave-key.pem).
SGX_SIGNING_KEY ?=
# A fixed SIGSTRUCT date makes the .sig reproducible (the date is not part of MRENCLAVE).
SGX_SIGN_DATE ?= 0000-00-00

# SGX start-up hashes ~170 MiB of trusted files and adds every enclave page: allow minutes.
GRAMINE_STARTUP_TIMEOUT ?= 600

GRAMINE_DOCS := https://gramine.readthedocs.io/en/stable/installation.html

# $(call gramine_require,tool[ tool...]): stop with install hints unless all tools are present.
define gramine_require
	@for tool in $(1); do \
	  command -v $$tool >/dev/null 2>&1 || { \
	    echo "$$tool not found. Install Gramine 1.8 or 1.9 ($(GRAMINE_DOCS))." >&2; \
	    echo "gramine-sgx also needs the SGX DCAP stack: SGX driver (Linux >= 5.11), aesmd with" >&2; \
	    echo "the ECDSA quote plugins, and a PCCS reachable by the default QPL." >&2; \
	    echo "Without Gramine you can still run: make gramine-check" >&2; \
	    exit 1; }; \
	done
endef

# $(call gramine_render,MODE): render the manifest for sgx or direct with the real tool.
# entrypoint is the venv's bin/python, not its realpath: CPython finds pyvenv.cfg next to it.
define gramine_render
	@mkdir -p $(GRAMINE_BUILD)/$(1) $(STATE_DIR_$(1))
	gramine-manifest \
		-Dentrypoint=$(abspath $(ENCLAVE_PYTHON)) \
		-Darch_libdir=$(ARCH_LIBDIR) \
		-Dra_type=$(RA_TYPE) \
		-Ddebug=$(GRAMINE_DEBUG) \
		-Dlog_level=$(GRAMINE_LOG_LEVEL) \
		-Dstate_dir=$(STATE_DIR_$(1)) \
		-Dmode=$(1) \
		$(MANIFEST_TEMPLATE) $(call GRAMINE_APP,$(1)).manifest
endef

# $(call gramine_run_demo,ENCLAVE_COMMAND,MODE[,EXTRA DEMO FLAGS]): the demo starts its own host
# with the enclave command replaced (the host runs it from the project root: the manifest's
# relative paths resolve there); the demo's exit status is the result.
define gramine_run_demo
	$(PYTHON) -m cleanroom.demo --enclave-command '$(1)' --startup-timeout $(GRAMINE_STARTUP_TIMEOUT) \
		--work-dir $(GRAMINE_BUILD)/demo-$(2) $(3)
endef

# A verifier policy that trusts exactly the MRENCLAVE just signed (and TCB statuses from
# SGX_ALLOWED_STATUSES), so the demo's parties verify the real quote instead of opting into
# simulation.
SGX_ALLOWED_STATUSES ?= UpToDate
define sgx_verifier_policy
	$(PYTHON) -c 'import json, sys; v = json.load(open(sys.argv[1])); \
	print("mr_enclaves = [\"%s\"]" % v["mr_enclave"]); \
	print("allowed_statuses = [%s]" % ", ".join("\"%s\"" % s for s in sys.argv[2].split()))' \
		$(call GRAMINE_APP,sgx).sigstruct.json '$(SGX_ALLOWED_STATUSES)' > $(call GRAMINE_APP,sgx).verifier.toml
endef

# The signed identity as JSON (with the trailing newline sigstruct-view leaves out), then the
# bill of materials of the signed manifest: every trusted file, its SHA-256 and its origin.
define sgx_measurement
	gramine-sgx-sigstruct-view --output-format json $(call GRAMINE_APP,sgx).sig \
		> $(call GRAMINE_APP,sgx).sigstruct.json
	@echo >> $(call GRAMINE_APP,sgx).sigstruct.json
	@cat $(call GRAMINE_APP,sgx).sigstruct.json
	$(PYTHON) -m manifests.check --bom $(call GRAMINE_APP,sgx).bom.json \
		--manifest $(call GRAMINE_APP,sgx).manifest.sgx --sigstruct $(call GRAMINE_APP,sgx).sigstruct.json
endef

.PHONY: enclave-venv enclave-pyc gramine-check gramine-manifest gramine-direct gramine-sgx \
	measurement gramine-bom gramine-clean

# The enclave's venv holds exactly requirements/enclave.txt: no pip, no setuptools (a venv made
# --without-pip, filled by the dev venv's pip through --python), binary wheels only. Every .pyc
# is compiled here, before signing: trusted directories are read-only in the enclave, and with
# PYTHONDONTWRITEBYTECODE=1 Python never tries to write into them.
enclave-venv: $(ENCLAVE_VENV)/.stamp enclave-pyc

$(ENCLAVE_VENV)/.stamp: requirements/enclave.txt | $(VENV)/.stamp
	rm -rf $(ENCLAVE_VENV)
	$(PYTHON311) -m venv --without-pip $(ENCLAVE_VENV)
	$(PYTHON) -m pip --python $(ENCLAVE_PYTHON) install --no-deps --only-binary=:all: \
		-r requirements/enclave.txt
	$(PYTHON) -m pip --python $(ENCLAVE_PYTHON) check
	$(ENCLAVE_PYTHON) -m compileall -q $(ENCLAVE_VENV)/lib
	touch $@

# The project's byte-code is checked-hash: CPython verifies it against the (also trusted) source
# on every import, instead of trusting an mtime the host controls. -f rewrites stale files.
# Only the TCB folders: nothing else of the repository is trusted, so nothing else loads inside.
enclave-pyc: | $(VENV)/.stamp
	$(if $(wildcard $(ENCLAVE_PYTHON)),$(ENCLAVE_PYTHON),$(PYTHON)) -m compileall -q -f \
		--invalidation-mode checked-hash $(TCB_DIRS)

# Works without Gramine: stand-in renderer + checks, for both profiles.
gramine-check: enclave-pyc | $(VENV)/.stamp
	$(PYTHON) -m manifests.check --profile sgx
	$(PYTHON) -m manifests.check --profile direct

gramine-manifest: enclave-venv
	$(call gramine_require,gramine-manifest)
	$(call gramine_render,$(GRAMINE_MODE))

gramine-direct: enclave-venv
	$(call gramine_require,gramine-manifest gramine-direct)
	$(call gramine_render,direct)
	@echo "gramine-direct: NO SGX. No quote (the host falls back to the simulation PKI), no"
	@echo "confidentiality; trusted-file checks are enforced. For testing the manifest only."
	$(call gramine_run_demo,gramine-direct $(abspath $(call GRAMINE_APP,direct)),direct)

gramine-sgx: enclave-venv
	$(call gramine_require,gramine-manifest gramine-sgx-sign gramine-sgx-sigstruct-view gramine-sgx)
	$(call gramine_render,sgx)
	gramine-sgx-sign $(if $(SGX_SIGNING_KEY),--key $(SGX_SIGNING_KEY)) --date $(SGX_SIGN_DATE) \
		--manifest $(call GRAMINE_APP,sgx).manifest --output $(call GRAMINE_APP,sgx).manifest.sgx
	$(sgx_measurement)
	$(sgx_verifier_policy)
	$(call gramine_run_demo,gramine-sgx $(abspath $(call GRAMINE_APP,sgx)),sgx,--verifier-policy $(call GRAMINE_APP,sgx).verifier.toml)

measurement:
	@if ! command -v gramine-sgx-sigstruct-view >/dev/null 2>&1; then \
	  echo "Cannot print the measurement: Gramine is not installed. MRENCLAVE depends on" >&2; \
	  echo "libpal and gramine-sgx-sign; install Gramine and run: SGX=1 make gramine-sgx" >&2; \
	  exit 1; \
	elif [ ! -f $(call GRAMINE_APP,sgx).sig ]; then \
	  echo "No $(call GRAMINE_APP,sgx).sig yet: run SGX=1 make gramine-sgx first." >&2; \
	  exit 1; \
	fi
	$(sgx_measurement)

# No Gramine needed: the BOM of the stand-in render (Gramine's runtime listed, not hashed).
# Compare two with: $(PYTHON) -m manifests.check --bom-diff A.json B.json
gramine-bom: enclave-pyc | $(VENV)/.stamp
	@mkdir -p $(GRAMINE_BUILD)
	$(PYTHON) -m manifests.check --profile sgx --bom $(GRAMINE_BUILD)/standin.bom.json

# The sealed state is bound to one build (sgx: MRENCLAVE) and cannot be read by the next one,
# so the old collaboration-*.sealed files (and direct mode's published-key file) go too. Only
# those names: a STATE_DIR_* pointed elsewhere loses nothing else.
SEALED_STATE_FILES := -name 'collaboration-*.sealed' -o -name 'INSECURE-simulation-sealing.key'
gramine-clean:
	rm -rf $(GRAMINE_BUILD)
	@for dir in $(STATE_DIR_sgx) $(STATE_DIR_direct); do \
	  [ -d "$$dir" ] || continue; \
	  files=$$(find "$$dir" -maxdepth 1 -type f \( $(SEALED_STATE_FILES) \)); \
	  if [ -n "$$files" ]; then \
	    echo "gramine-clean: deleting the sealed state in $$dir (unreadable by any other build):"; \
	    echo "$$files" | sed 's/^/  /'; \
	    find "$$dir" -maxdepth 1 -type f \( $(SEALED_STATE_FILES) \) -delete; \
	  fi; \
	done
