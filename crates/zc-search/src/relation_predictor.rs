//! A binary-relation predictor in the spirit of BRP-NAS: a small graph convolutional network
//! scores a cell, and is trained (burn, Adam) so that `sigmoid(score(a) - score(b))` predicts
//! whether `a` is better than `b`. Only the ranking matters, so any target scale works (an
//! accuracy or a proxy score).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{log_sigmoid, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zc_space::{Cell, EDGES, NUM_EDGES, NUM_NODES, Op};

/// Nodes of the op-on-node graph of a cell: the input, one node per edge, the output.
const GRAPH_NODES: usize = NUM_EDGES + 2;
/// Node types: input, output and the five ops.
const NODE_TYPES: usize = Op::ALL.len() + 2;
/// Width of the hidden layers.
const HIDDEN: usize = 32;
/// Graph convolution layers.
const LAYERS: usize = 3;
/// Pairs per training step.
const PAIRS_PER_STEP: usize = 128;
/// Adam's step size.
const LEARNING_RATE: f64 = 3e-3;

/// The scoring network: graph convolutions over the op-on-node graph, a mean over nodes and a
/// linear head.
#[derive(Module, Debug)]
struct GraphNetwork {
    layers: Vec<Linear>,
    head: Linear,
}

/// A cell ranker trained on pairwise relations.
pub struct RelationPredictor {
    network: GraphNetwork,
    optimizer: ModuleOptimizer,
    /// The normalised adjacency (with self loops) of the op-on-node graph, the same for
    /// every cell.
    adjacency: Tensor<2>,
    device: Device,
    rng: ChaCha8Rng,
}

impl std::fmt::Debug for RelationPredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelationPredictor").finish_non_exhaustive()
    }
}

impl RelationPredictor {
    /// A freshly initialised predictor on the CPU; `seed` fixes its weights and the pairs it
    /// trains on.
    pub fn new(seed: u64) -> Self {
        let device = Device::flex().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut linear = |inputs: usize, outputs: usize| {
            // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
            let bound = 1.0 / (inputs as f32).sqrt();
            let mut uniform = |n: usize| -> Vec<f32> {
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            Linear {
                weight: Param::from_data(
                    TensorData::new(uniform(inputs * outputs), [inputs, outputs]),
                    &device,
                ),
                bias: Some(Param::from_data(
                    TensorData::new(uniform(outputs), [outputs]),
                    &device,
                )),
            }
        };
        let mut layers = Vec::with_capacity(LAYERS);
        for l in 0..LAYERS {
            layers.push(linear(if l == 0 { NODE_TYPES } else { HIDDEN }, HIDDEN));
        }
        let head = linear(HIDDEN, 1);
        let network = GraphNetwork { layers, head };
        RelationPredictor {
            network,
            optimizer: AdamConfig::new().init(),
            adjacency: Tensor::from_data(
                TensorData::new(normalised_adjacency().to_vec(), [GRAPH_NODES, GRAPH_NODES]),
                &device,
            ),
            device,
            rng,
        }
    }

    /// `steps` Adam steps on random pairs of `cells` with different `targets` (higher is
    /// better). Returns whether it trained: not when every target is equal.
    pub fn fit(&mut self, cells: &[Cell], targets: &[f64], steps: usize) -> bool {
        assert_eq!(cells.len(), targets.len(), "one target per cell");
        let n = cells.len();
        if n < 2 || targets.iter().all(|&t| t == targets[0]) {
            return false;
        }
        let features = node_features(cells, &self.device);
        // The optimiser takes the network by value; tensors are shared, so the clone is cheap.
        let mut network = self.network.clone();
        for _ in 0..steps {
            let (mut first, mut second, mut labels) = (Vec::new(), Vec::new(), Vec::new());
            while first.len() < PAIRS_PER_STEP {
                let (a, b) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
                if targets[a] != targets[b] {
                    first.push(a as i64);
                    second.push(b as i64);
                    labels.push(if targets[a] > targets[b] { 1.0f32 } else { 0.0 });
                }
            }
            // Score only the cells of the sampled pairs: the first members, then the second.
            first.extend(second);
            let index = Tensor::<1, Int>::from_data(
                TensorData::new(first, [2 * PAIRS_PER_STEP]),
                &self.device,
            );
            let scores = forward(&network, &self.adjacency, features.clone().select(0, index));
            let margin = scores.clone().slice(0..PAIRS_PER_STEP)
                - scores.slice(PAIRS_PER_STEP..2 * PAIRS_PER_STEP);
            let labels =
                Tensor::<1>::from_data(TensorData::new(labels, [PAIRS_PER_STEP]), &self.device);
            // Binary cross-entropy of sigmoid(margin) against "first is better".
            let loss = -(labels.clone() * log_sigmoid(margin.clone())
                + (labels.neg() + 1.0) * log_sigmoid(margin.neg()))
            .mean();
            let grads = GradientsParams::from_grads(loss.backward(), &network);
            network = self.optimizer.step(LEARNING_RATE, network, grads);
        }
        self.network = network;
        true
    }

    /// The predicted score of each cell (higher = predicted better).
    pub fn predict(&self, cells: &[Cell]) -> Vec<f64> {
        // Without gradients: an autodiff forward that is never differentiated keeps its memory.
        let network = self.network.valid();
        let device = Device::flex();
        let adjacency = self.adjacency.clone().inner();
        forward(&network, &adjacency, node_features(cells, &device))
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("converted to f64 above")
    }
}

/// Scores `[cells]` from node features `[cells, nodes, types]`.
fn forward(network: &GraphNetwork, adjacency: &Tensor<2>, features: Tensor<3>) -> Tensor<1> {
    let [cells, nodes, _] = features.dims();
    let mut h = features;
    for layer in &network.layers {
        // Propagate over the graph (the same adjacency for every cell): [nodes, cells * width].
        let width = h.dims()[2];
        let mixed = adjacency
            .clone()
            .matmul(h.swap_dims(0, 1).reshape([nodes, cells * width]))
            .reshape([nodes, cells, width])
            .swap_dims(0, 1);
        h = relu(layer.forward(mixed));
    }
    let pooled: Tensor<2> = h.mean_dim(1).squeeze_dim(1);
    network.head.forward(pooled).squeeze_dim(1)
}

/// One-hot node types `[cells, nodes, types]`: node 0 the input, nodes 1..=6 the edges' ops,
/// node 7 the output.
fn node_features(cells: &[Cell], device: &Device) -> Tensor<3> {
    let mut data = vec![0.0f32; cells.len() * GRAPH_NODES * NODE_TYPES];
    for (i, cell) in cells.iter().enumerate() {
        let graph = &mut data[i * GRAPH_NODES * NODE_TYPES..(i + 1) * GRAPH_NODES * NODE_TYPES];
        graph[0] = 1.0;
        graph[(GRAPH_NODES - 1) * NODE_TYPES + 1] = 1.0;
        for (e, op) in cell.ops().iter().enumerate() {
            graph[(e + 1) * NODE_TYPES + 2 + op.index()] = 1.0;
        }
    }
    Tensor::from_data(
        TensorData::new(data, [cells.len(), GRAPH_NODES, NODE_TYPES]),
        device,
    )
}

/// D^-1/2 (A + A^T + I) D^-1/2 of the op-on-node graph: the input feeds the edges leaving node
/// 0, an edge into node j feeds the edges leaving j, and the edges into the last node feed the
/// output.
fn normalised_adjacency() -> [f32; GRAPH_NODES * GRAPH_NODES] {
    let mut a = [[0.0f32; GRAPH_NODES]; GRAPH_NODES];
    let output = GRAPH_NODES - 1;
    for (e, edge) in EDGES.iter().enumerate() {
        if edge.from == 0 {
            a[0][e + 1] = 1.0;
        }
        if edge.to == NUM_NODES - 1 {
            a[e + 1][output] = 1.0;
        }
        for (f, next) in EDGES.iter().enumerate() {
            if next.from == edge.to {
                a[e + 1][f + 1] = 1.0;
            }
        }
    }
    let mut sym = [[0.0f32; GRAPH_NODES]; GRAPH_NODES];
    for i in 0..GRAPH_NODES {
        for j in 0..GRAPH_NODES {
            sym[i][j] = a[i][j].max(a[j][i]) + if i == j { 1.0 } else { 0.0 };
        }
    }
    let degree: Vec<f32> = sym.iter().map(|row| row.iter().sum()).collect();
    let mut out = [0.0f32; GRAPH_NODES * GRAPH_NODES];
    for i in 0..GRAPH_NODES {
        for j in 0..GRAPH_NODES {
            out[i * GRAPH_NODES + j] = sym[i][j] / (degree[i] * degree[j]).sqrt();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_has_the_cell_structure() {
        let a = normalised_adjacency();
        let connected = |i: usize, j: usize| a[i * GRAPH_NODES + j] > 0.0;
        // Input -> edges (1<-0), (2<-0), (3<-0) = nodes 1, 2, 4.
        assert!(connected(0, 1) && connected(0, 2) && connected(0, 4));
        assert!(!connected(0, 3) && !connected(0, 7));
        // Edge (1<-0) feeds (2<-1) and (3<-1) = nodes 3 and 5.
        assert!(connected(1, 3) && connected(1, 5) && !connected(1, 6));
        // Edges into node 3 = nodes 4, 5, 6 feed the output.
        assert!(connected(4, 7) && connected(5, 7) && connected(6, 7) && !connected(3, 7));
        // Symmetric.
        for i in 0..GRAPH_NODES {
            for j in 0..GRAPH_NODES {
                assert_eq!(a[i * GRAPH_NODES + j], a[j * GRAPH_NODES + i]);
            }
        }
    }

    #[test]
    fn learns_to_rank_a_simple_target() {
        // Target: the number of 3x3 convolutions, learnable from node types alone.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let cells: Vec<Cell> = (0..200).map(|_| zc_space::random_cell(&mut rng)).collect();
        let convs = |c: &Cell| c.ops().iter().filter(|&&o| o == Op::NorConv3x3).count() as f64;
        let targets: Vec<f64> = cells.iter().map(convs).collect();
        let mut predictor = RelationPredictor::new(1);
        assert!(predictor.fit(&cells, &targets, 200));
        let held_out: Vec<Cell> = (0..200).map(|_| zc_space::random_cell(&mut rng)).collect();
        let predicted = predictor.predict(&held_out);
        let truth: Vec<f64> = held_out.iter().map(convs).collect();
        // Pairwise ranking accuracy on pairs with different targets.
        let (mut right, mut total) = (0, 0);
        for i in 0..held_out.len() {
            for j in 0..i {
                if truth[i] != truth[j] {
                    total += 1;
                    right += usize::from((predicted[i] > predicted[j]) == (truth[i] > truth[j]));
                }
            }
        }
        let accuracy = right as f64 / total as f64;
        assert!(accuracy > 0.9, "pairwise accuracy {accuracy}");
    }
}
