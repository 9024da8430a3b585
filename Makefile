# Everything runs from a local virtual environment that these targets create.
VENV   ?= .venv
REALDATA ?= ../shared/realdata
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all test-fast bench data-real data-harmonize eval-harmonize train-harmonize eval-real train-placement train-indoor train-indoor-paper baseline-indoor eval-indoor train-glasses clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# The CPU wheel first: an unpinned torch would pull several GB of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,export,landmarks,ray,pretrained]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m stgan_cli.demo

# Everything (what CI runs): one pytest-xdist worker per core, each computing on one thread
# (tests/conftest.py); a file's tests stay on one worker, so its fixtures are made once.
XDIST  := -n auto --dist loadfile
test: $(STAMP)
	$(PY) -m pytest -q $(XDIST)

# Everything, and the page of `stgan app` driven in headless Chromium (Debian's chromium and
# chromium-driver, installed here if missing: needs root; and selenium in the venv).
test-all: $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(PY) -m pip install -q 'selenium>=4.10'
	$(PY) -m pytest -q $(XDIST)

# Everyday work: the same minus the tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m 'not slow'

bench: $(STAMP)
	$(PY) benchmarks/composite.py
	$(PY) benchmarks/user_commands.py

# The default model, from scratch: data, the whole schedule (resumed if interrupted), models/indoor/.
train-indoor: data-real
	grep -qs contact_shadow data/indoor/train/meta.jsonl || $(PY) -m stgan_cli data synth-indoor --out data/indoor --n 10000 --seed 0 --overwrite
	if [ -f runs/indoor/checkpoint.pt ]; then $(PY) -m stgan_cli train --resume runs/indoor; \
	else $(PY) -m stgan_cli train --config configs/indoor.yaml --data data/indoor --out runs/indoor; fi
	# The weights and config (default_iterations 2 is in configs/indoor.yaml, chosen on the held-out
	# real pairs; see the card); the hand-written card (recipe, measured tables, limits) stays.
	mkdir -p models/indoor && cp runs/indoor/model/model.safetensors runs/indoor/model/config.yaml models/indoor/
	# The graph that composite's onnx engine runs (checked against the weights it was made from).
	$(PY) -m stgan_cli export indoor --format engine

# The paper's recipe (models/indoor-paper): five generators, supervised G_1, D, warp stages, end to end.
train-indoor-paper: $(STAMP)
	grep -qs contact_shadow data/indoor/train/meta.jsonl || $(PY) -m stgan_cli data synth-indoor --out data/indoor --n 10000 --seed 0 --overwrite
	if [ -f runs/indoor-paper/checkpoint.pt ]; then $(PY) -m stgan_cli train --resume runs/indoor-paper; \
	else $(PY) -m stgan_cli train --config configs/indoor-paper.yaml --data data/indoor --out runs/indoor-paper; fi
	mkdir -p models/indoor-paper && cp runs/indoor-paper/model/model.safetensors models/indoor-paper/

# The paper's naive baseline: the same supervised G_1, then one generator trained adversarially for
# as many steps as ST-GAN's warp and end-to-end stages together (5 x 300 + 300), after the same
# 200 D-only steps. Resumes when interrupted.
baseline-indoor: $(STAMP)
	test -d runs/indoor-paper/stages/pretrain || { echo "baseline-indoor starts from make train-indoor-paper's runs/indoor-paper/stages/pretrain"; exit 1; }
	test -f runs/indoor-naive/model/model.safetensors || $(PY) -m stgan_cli refine runs/indoor-paper/stages/pretrain \
		--data data/indoor --out runs/indoor-naive/model -c configs/indoor-paper.yaml --steps 1800 --set stages.d_pretrain=200

# The paper model card's comparison table: identity, the supervised G_1, every stage, the shipped
# model, and the naive baseline when it has been trained, all on the same 1000 perturbed held-out rooms.
eval-indoor: $(STAMP)
	$(PY) -m stgan_cli eval runs/indoor-paper/stages/pretrain $$(ls -d runs/indoor-paper/stages/warp* | sort) \
		runs/indoor-paper/stages/end_to_end models/indoor-paper $$(ls -d runs/indoor-naive/model 2>/dev/null) \
		--data data/indoor/test --n 1000 --seed 0 --markdown | tee runs/indoor-paper/comparison.md

# Real photos: every object of ../shared/realdata/segmented cut out and its hole filled; a fixed split
# by photo (seed 0, 80 % train), so that test/ holds ~300 pairs that no training reads.
data-real: $(STAMP)
	test -d $(REALDATA)/segmented || { echo "data-real needs $(REALDATA)/segmented"; exit 1; }
	test -f data/real/summary.json || $(PY) -m stgan_cli data from-photos --instances $(REALDATA)/segmented \
		--out data/real --split 0.8 --seed 0 --overwrite

# The real-photo table: identity, the shipped model and any MODELS="a b" given, on the held-out photos,
# from the user's rough box (shifted and scaled by 12 %) and from the truth itself; with each model's
# trust region (as composite uses them) and without it.
eval-real: data-real
	for start in box truth; do for trust in default off; do echo "start: $$start, trust region: $$trust"; \
		$(PY) -m stgan_cli eval indoor $(MODELS) --data data/real/test --protocol $$start --seed 0 \
		--trust-region $$trust --markdown | tee data/real/eval-$$start-$$trust.md; done; done
	# The honest row: a decoy hole at the mirror of the truth about each start, so aiming for the
	# filled hole gains nothing (stgan_cli/training/decoys.py).
	for trust in default off; do echo "start: box, decoys, trust region: $$trust"; \
		$(PY) -m stgan_cli eval indoor $(MODELS) --data data/real/test --protocol box --decoys --seed 0 \
		--trust-region $$trust --markdown | tee data/real/eval-box-decoys-$$trust.md; done
	# With no box: where the placement critic puts each object (composite --place auto), against the
	# model's fixed spot and a random candidate.
	$(PY) -m stgan_cli eval indoor --data data/real/test --protocol auto --seed 0 | tee data/real/eval-auto.md
	# Photos without a filled hole: how far each model moves a person's own target box.
	$(PY) tools/user_boxes.py indoor indoor-paper $(MODELS) | tee data/real/user-boxes.md

# The placement critic of `composite --place auto` (models/placement): frozen EfficientNet-Lite0
# features, a small head ranking the true box first among decoys, on the real pairs and 3,000
# generated rooms (about 20 minutes on 2 cores).
train-placement: data-real
	test -f data/rooms3k/train/meta.jsonl || $(PY) -m stgan_cli data synth-indoor --out data/rooms3k --n 3000 --seed 0 --overwrite
	$(PY) -m stgan_cli train --config configs/placement.yaml --out runs/placement
	mkdir -p models/placement && cp runs/placement/model/model.safetensors runs/placement/model/config.yaml models/placement/
	# The graph composite runs without PyTorch (checked against the weights' scores); the card stays.
	$(PY) -m stgan_cli export placement --format engine

# Harmonization pairs: every object of ../shared/realdata/segmented over 1 % of its photo, recoloured by
# a random plausible change (the truth is the photo as it was); split by photo as data-real is.
data-harmonize: $(STAMP)
	test -d $(REALDATA)/segmented || { echo "data-harmonize needs $(REALDATA)/segmented"; exit 1; }
	test -f data/harmonize/summary.json || $(PY) -m stgan_cli data harmonize --instances $(REALDATA)/segmented \
		--out data/harmonize --split 0.8 --seed 0 --overwrite

# The harmonizer of `composite --harmonize` (models/harmonize); resumed if interrupted.
train-harmonize: data-harmonize
	if [ -f runs/harmonize/checkpoint.pt ]; then $(PY) -m stgan_cli train --resume runs/harmonize; \
	else $(PY) -m stgan_cli train --config configs/harmonize.yaml --out runs/harmonize; fi
	mkdir -p models/harmonize && cp runs/harmonize/model/model.safetensors runs/harmonize/model/config.yaml models/harmonize/
	$(PY) -m stgan_cli export harmonize --format engine

# The harmonizer against the composite and the statistics transfer, on the held-out recoloured photos.
eval-harmonize: data-harmonize
	$(PY) -m stgan_cli eval harmonize --data data/harmonize/test --report data/harmonize/report | tee data/harmonize/eval.md

# The glasses demo model: the faces and glasses of ../shared/realdata (every 5th photo held out).
train-glasses: $(STAMP)
	test -d $(REALDATA)/faces/no_glasses || { echo "train-glasses needs $(REALDATA)/faces and glasses"; exit 1; }
	# .done-anchor: crops aligned on where the landmarks put the glasses (faces.glasses_anchor); older folders are rebuilt.
	test -f data/glasses/train/backgrounds/.done-anchor || { $(PY) -m stgan_cli data glasses --faces $(REALDATA)/faces/no_glasses \
		--glasses $(REALDATA)/glasses --out data/glasses --copies 8 --holdout 5 && touch data/glasses/train/backgrounds/.done-anchor; }
	if [ -f runs/glasses/checkpoint.pt ]; then $(PY) -m stgan_cli train --resume runs/glasses; \
	else $(PY) -m stgan_cli train --config configs/glasses.yaml --data data/glasses --out runs/glasses; fi
	# The weights and config; the hand-written card (measured tables, limits) stays.
	mkdir -p models/glasses && cp runs/glasses/model/model.safetensors runs/glasses/model/config.yaml models/glasses/
	$(PY) -m stgan_cli export glasses --format engine

clean:
	rm -rf $(VENV) out
