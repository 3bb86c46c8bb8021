# Recipes for the zero-cost NAS harness. Install just with `cargo install just`.
# Every recipe is a plain cargo command you can also run by hand.

zc := "cargo run --release -q -p zc-cli --"

# List recipes.
default:
    @just --list

# Run the test suite (the command CI runs).
test:
    cargo test --release --workspace

# fmt + clippy, as required before committing.
lint:
    cargo fmt --all --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Validate the shipped data.
check-data:
    {{zc}} data check

# Show a cell: `just space 9930` or `just space '|nor_conv_3x3~0|+...'`.
space CELL:
    {{zc}} space '{{CELL}}'

# Score one cell with every proxy: `just score 9930 cifar100`.
score CELL DATASET="cifar10":
    {{zc}} score --arch '{{CELL}}' --dataset {{DATASET}}

# Score the dense parity fixture with the reference's own weights and minibatch.
score-fixture:
    {{zc}} score --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' \
        --weights data/fixtures/parity/a_dense.safetensors --batch data/fixtures/parity/a_dense.safetensors

# The paper's Table 1 on the shipped data: the sweep (resumable: rerun to continue), then the
# table, printed and written to results/table1.{md,parquet}. `just reproduce-table1 all` is the
# whole space instead: every paper proxy but GraSP on all 15,625 cells (experiments/table1-all.yaml,
# hours on 2 cores; shard it with `zc sweep ... --shard K/N` or `zc submit`), GraSP on the
# 1,000-cell sample (experiments/table1-1000-grasp.yaml), in results/table1-all.{md,parquet}.
reproduce-table1 CELLS="sample":
    {{ if CELLS == "all" { zc + " sweep experiments/table1-all.yaml && " + zc + " sweep experiments/table1-1000-grasp.yaml" } else { zc + " sweep experiments/table1.yaml" } }}
    {{zc}} table {{ if CELLS == "all" { "results/table1-all results/table1-1000-grasp --out results/table1-all" } else { "results/table1 --out results/table1" } }}

# Criterion benchmarks of the proxy engine (one thread; RAYON_NUM_THREADS=2 for two).
bench:
    RAYON_NUM_THREADS=1 cargo bench -p zc-proxies

# The paper's Figure 1: reduced training (r8c4, r8c8, r16c4, r16c8, 40 epochs) of 40 cells on the
# shipped data (data-reduced: 800 training / 200 test images; about an hour on 2 cores,
# resumable), then the figures and their numbers in results/figures/. `just reproduce-figure1
# DIR` trains every cell on the official CIFAR-10 binary files in DIR instead (days: shard it).
reproduce-figure1 OFFICIAL="":
    {{ if OFFICIAL == "" { zc + " train experiments/econas.yaml" } else { zc + " train experiments/econas-official.yaml --official " + OFFICIAL } }}
    {{zc}} figures --train {{ if OFFICIAL == "" { "results/econas" } else { "results/econas-official" } }} --sweep results/table1-1000 --out results/figures/{{ if OFFICIAL == "" { "econas" } else { "econas-official" } }}

# The paper's Figure 2: every proxy, the vote, the 12-epoch baseline, econas and econas+ against
# their cost per dataset (the Table-1 sweep of 1,000 cells, resumable, and the training above).
reproduce-figure2 OFFICIAL="":
    {{zc}} sweep experiments/table1-1000.yaml
    just reproduce-figure1 {{OFFICIAL}}

# The paper's Figure 3: synflow over all 15,625 cells on CIFAR-100 (resumable sweep), then the
# NAS search curves (RAND, RL, AE, BP; 100 seeded runs per variant) into results/figure3/.
reproduce-figure3 RUNS="100":
    {{zc}} sweep experiments/synflow-all.yaml
    {{zc}} search experiments/figure3.yaml --runs {{RUNS}}
