# Every target creates .venv on first use and installs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint serve eval calibrate audit bench bench-detection bench-recognizers bench-fairness bench-requests bench-video bench-console screenshots bench-search bench-service-scale bench-ray fuzz load clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check faceledger tests benchmarks examples fuzzing
	$(BIN)/ruff format --check faceledger

test: lint
	$(BIN)/pytest

# The service on its embedded defaults: SQLite under ./var, http://127.0.0.1:8080/docs.
serve: install
	$(BIN)/faceledger serve

# LFW view 2, all 10 folds (about 2.5 minutes on 2 cores the first time, seconds when cached).
eval: install
	$(BIN)/faceledger eval lfw

# Regenerate the shipped similarity -> false match rate table from all of LFW.
calibrate: install
	$(BIN)/faceledger eval calibrate

# The accuracy and fairness audit: out/audit/audit.html and .json; ships the worst-group
# thresholds with the package (about 5 minutes with embeddings cached by make calibrate).
audit: install
	$(BIN)/faceledger audit run --install-calibration

# The peer wraps the same dlib models; it needs pkg_resources, gone from setuptools 81.
bench: install
	$(BIN)/pip install --quiet --no-deps face_recognition==1.3.0 "setuptools<81"
	$(BIN)/python benchmarks/engine_vs_face_recognition.py

# Faces found and time per image, one thread, on LFW, UTKFace, dlib's labelled photos and
# 1280x720 frames with pasted faces: the engine before the smallest-face rule, HOG, YuNet.
bench-detection: install
	$(BIN)/python benchmarks/detection.py

# dlib's descriptor against SFace: LFW accuracy, and FMR/FNMR per group at each one's 1e-3.
bench-recognizers: install
	$(BIN)/python benchmarks/recognizers.py

# Label-free fair score normalisation (FSN) on the default model: per-group FMR/FNMR at the
# overall 1e-3 and 1e-4 thresholds, offsets out of fold, for several cluster counts.
bench-fairness: install
	$(BIN)/python benchmarks/fair_normalisation.py

# Search by image through a real server, before (the commit before YuNet) and now: latency on
# 250 px and 1080p photos, throughput with 1, 2 and 4 clients.
BEFORE ?= 8c49005
bench-requests: install
	$(BIN)/python benchmarks/requests.py --before $(BEFORE)

# Video: real-time factor at 5 frames a second and every frame, against face_recognition on
# the same sampled frames, and recall against an every-frame CNN reference.
bench-video: install
	$(BIN)/pip install --quiet --no-deps face_recognition==1.3.0 "setuptools<81"
	$(BIN)/python benchmarks/video.py

# The console in chromium: page load times with 500 faces enrolled, and crop storage per face.
bench-console: install
	$(BIN)/python benchmarks/console.py --faces 500 --loads 20

# The console's main pages as the README shows them (docs/screenshots/), from the browser tests.
screenshots: install
	FACELEDGER_SCREENSHOTS=1 $(BIN)/pytest -q tests/web/test_console.py

# Exact search, the approximate index, faiss IVF-Flat, usearch HNSW and pgvector HNSW at 100k and 1M faces
# (about 25 minutes, most of it usearch building its graph); SIZES=10000000 PEERS= for 10M.
SIZES ?= 100000,1000000
PEERS ?= faiss,usearch,pgvector
bench-search: install
	$(BIN)/python benchmarks/search.py --sizes $(SIZES) --peers "$(PEERS)"

# The server at 1M faces: start time (from the database, from its saved index), search by face
# id and by image through the API; DATABASE=postgresql for the same on PostgreSQL + pgvector.
DATABASE ?= sqlite
bench-service-scale: install
	$(BIN)/python benchmarks/service_scale.py --faces 1000000 --database $(DATABASE)

# Batch ingest of 400 LFW photos: local threads (1, 2) and a local Ray cluster (1, 2 CPUs).
bench-ray: install
	$(BIN)/python benchmarks/on_ray.py --images 400

# Coverage-guided fuzzing of every reader of untrusted input (atheris), FUZZ_SECONDS long;
# crashes are written to out/fuzz/ and fail the run. make test runs the same contracts briefly.
FUZZ_SECONDS ?= 1800
fuzz: install
	$(BIN)/pip install --quiet "atheris>=2.3"
	mkdir -p out/fuzz/corpus
	$(BIN)/python fuzzing/seed_corpus.py out/fuzz/corpus
	$(BIN)/python fuzzing/fuzz_inputs.py -max_total_time=$(FUZZ_SECONDS) -timeout=25 \
		-rss_limit_mb=2048 -artifact_prefix=out/fuzz/ -print_final_stats=1 out/fuzz/corpus

# Concurrent indexers and searchers against a real server on loopback (benchmarks/load.py).
load: install
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) build *.egg-info
