// Train TensorFlow Playground's own network code headlessly, the way playground.ts does, and
// print a JSON fixture of numbers: data, initial weights, sample order, per-epoch losses and
// the links L1 killed. Run by make_fixture.sh, which compiles playground's src/nn.ts and
// src/dataset.ts unchanged into ./build next to this file's working directory.
//
// What is taken from playground.ts (it needs a browser, so it is followed here by hand):
// - generateData: Math.seedrandom(seed); generator(numSamples, noise); shuffle(data);
//   trainData = data[:floor(n * percTrainData / 100)], testData = the rest.
// - reset: nn.buildNetwork([inputs, ...hidden, 1], activation, TANH (classification) or
//   LINEAR (regression), regularization, inputIds, initZero), weights from Math.random.
// - oneStep (one epoch, "iter"): for each training point in trainData's order, forwardProp,
//   backProp with Errors.SQUARE, and updateWeights(lr, regRate) after every batchSize-th
//   point (i + 1) % batchSize == 0; a leftover partial batch stays accumulated into the next
//   epoch. Then lossTrain/lossTest = getLoss: mean of 0.5 (output - label)^2.
// - constructInput: the INPUTS table's features, in its order.
//
// The only change to the numbers: points, regression targets and initial weights are rounded
// to float32 (Math.fround) before training, so the harness (float32) starts from exactly the
// same values; training itself runs in float64 here, as in the browser.
"use strict";
const path = require("path");
const seedrandom = require("seedrandom");
const build = process.argv[2];
const nn = require(path.resolve(build, "nn.js"));
const dataset = require(path.resolve(build, "dataset.js"));

// playground.ts INPUTS, in its order; keys are the harness's feature names.
const INPUTS = [
  ["x1", (x, y) => x],
  ["x2", (x, y) => y],
  ["x1sq", (x, y) => x * x],
  ["x2sq", (x, y) => y * y],
  ["x1x2", (x, y) => x * y],
  ["sin_x1", (x, y) => Math.sin(x)],
  ["sin_x2", (x, y) => Math.sin(y)],
];
const GENERATORS = {
  circle: dataset.classifyCircleData,
  xor: dataset.classifyXORData,
  gauss: dataset.classifyTwoGaussData,
  spiral: dataset.classifySpiralData,
  reg_plane: dataset.regressPlane,
  reg_gauss: dataset.regressGaussian,
};
const ACTIVATIONS = {
  tanh: nn.Activations.TANH,
  relu: nn.Activations.RELU,
  sigmoid: nn.Activations.SIGMOID,
  linear: nn.Activations.LINEAR,
};
const REGULARIZATIONS = {none: null, l1: nn.RegularizationFunction.L1, l2: nn.RegularizationFunction.L2};

// The cases the fixture holds (tests/test_playground_fidelity.py runs each of them).
const CASES = [
  {name: "circle", data: "circle", features: ["x1", "x2"], hidden: [4, 2], activation: "tanh",
   lr: 0.03, reg: "none", rate: 0, batch: 10},
  {name: "xor_l2", data: "xor", features: ["x1", "x2"], hidden: [4], activation: "relu",
   lr: 0.03, reg: "l2", rate: 0.01, batch: 30},
  {name: "spiral_7_features", data: "spiral", features: INPUTS.map(f => f[0]), hidden: [8, 8, 8],
   activation: "tanh", lr: 0.03, reg: "none", rate: 0, batch: 7},
  {name: "reg_plane", data: "reg_plane", features: ["x1", "x2"], hidden: [4, 2], activation: "tanh",
   lr: 0.03, reg: "none", rate: 0, batch: 30},
  {name: "circle_l1", data: "circle", features: ["x1", "x2"], hidden: [4, 2], activation: "tanh",
   lr: 0.1, reg: "l1", rate: 0.01, batch: 10},
];
const COMMON = {seed: "0.12345", num_samples: 200, noise: 0, perc_train: 50, epochs: 40};

const f32 = Math.fround;
// Shortest decimal that reads back as the same float32 (9 significant digits suffice).
const short = v => Number(f32(v).toPrecision(9));

function features(c, x, y) {
  return INPUTS.filter(f => c.features.includes(f[0])).map(f => f[1](x, y));
}

function getLoss(network, c, points) {
  let loss = 0;
  for (const p of points) {
    const output = nn.forwardProp(network, features(c, p.x, p.y));
    loss += nn.Errors.SQUARE.error(output, p.label);
  }
  return loss / points.length;
}

function oneStep(network, c, trainData) {
  trainData.forEach((point, i) => {
    nn.forwardProp(network, features(c, point.x, point.y));
    nn.backProp(network, point.label, nn.Errors.SQUARE);
    if ((i + 1) % c.batch === 0) {
      nn.updateWeights(network, c.lr, c.rate);
    }
  });
}

// Layers after the input: weights[out][in] (link from input node j to node i) and biases.
function layersOf(network, field) {
  return network.slice(1).map(layer => ({
    weights: layer.map(node => node.inputLinks.map(link => field(link))),
    biases: layer.map(node => node.bias),
  }));
}

function runCase(spec) {
  const c = Object.assign({}, COMMON, spec);
  const regression = c.data.startsWith("reg_");
  seedrandom(c.seed, {global: true});  // Math.seedrandom(state.seed)
  const data = GENERATORS[c.data](c.num_samples, c.noise / 100);
  dataset.shuffle(data);
  for (const p of data) {
    p.x = f32(p.x); p.y = f32(p.y); p.label = f32(p.label);
  }
  const split = Math.floor(data.length * c.perc_train / 100);
  const trainData = data.slice(0, split), testData = data.slice(split);
  const shape = [c.features.length].concat(c.hidden).concat([1]);
  const outputActivation = regression ? nn.Activations.LINEAR : nn.Activations.TANH;
  const network = nn.buildNetwork(shape, ACTIVATIONS[c.activation], outputActivation,
      REGULARIZATIONS[c.reg], c.features, false);
  nn.forEachNode(network, true, node => {
    node.bias = f32(node.bias);
    node.inputLinks.forEach(link => { link.weight = f32(link.weight); });
  });
  const initial = layersOf(network, link => short(link.weight));
  initial.forEach(l => { l.biases = l.biases.map(short); });

  const lossTrain = [getLoss(network, c, trainData)], lossTest = [getLoss(network, c, testData)];
  const deadLinks = [0];
  for (let epoch = 1; epoch <= c.epochs; epoch++) {
    oneStep(network, c, trainData);
    lossTrain.push(getLoss(network, c, trainData));
    lossTest.push(getLoss(network, c, testData));
    let dead = 0;
    nn.forEachNode(network, true, node => node.inputLinks.forEach(l => { dead += l.isDead ? 1 : 0; }));
    deadLinks.push(dead);
  }
  const pointsOf = ps => ({x: ps.map(p => short(p.x)), y: ps.map(p => short(p.y)),
                            label: ps.map(p => short(p.label))});
  return {
    name: c.name,
    settings: {data: c.data, task: regression ? "regression" : "classification",
               features: c.features, hidden: c.hidden, activation: c.activation,
               lr: c.lr, reg: c.reg, rate: c.rate, batch: c.batch, epochs: c.epochs,
               seed: c.seed, num_samples: c.num_samples, noise: c.noise, perc_train: c.perc_train},
    // Points in trainData / testData order: Playground trains on trainData in this order
    // every epoch (no reshuffle).
    train: pointsOf(trainData),
    test: pointsOf(testData),
    initial_layers: initial,
    loss_train: lossTrain,
    loss_test: lossTest,
    dead_links_per_epoch: deadLinks,
    dead_at_end: layersOf(network, link => (link.isDead ? 1 : 0)).map(l => l.weights),
  };
}

const playgroundCommit = process.argv[3] || null;
const fixture = {
  about: "TensorFlow Playground's own src/nn.ts and src/dataset.ts, compiled unchanged and " +
         "trained headlessly as playground.ts does; written by scripts/playground_reference/make_fixture.sh",
  playground_commit: playgroundCommit,
  cases: CASES.map(runCase),
};
process.stdout.write(JSON.stringify(fixture) + "\n");
