//! The backbone's layers as read from the ONNX graph: convolutions with their weights and
//! poolings, in order (the streaming plan, `plan`, lays them out for running).

use std::collections::HashMap;

use tract_onnx::pb::{NodeProto, TensorProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{TractErrorContext, bail, ensure};

/// One convolution of the network: "valid" in time, "same" in frequency, stride 1.
#[derive(Clone, Debug)]
pub(crate) struct Conv {
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) kt: usize,
    pub(crate) kf: usize,
    /// `[cout, cin·kt·kf]`, the reduction index running over (input channel, time tap,
    /// frequency tap).
    pub(crate) weights: Tensor,
    pub(crate) bias: Option<Tensor>,
    /// LeakyReLU slope applied after the bias, if any.
    pub(crate) leaky: Option<Tensor>,
    /// Lower clamp (`Max` with a constant) applied after the activation, if any.
    pub(crate) floor: Option<Tensor>,
}

impl Conv {
    /// The same convolution without its weights, for a plan that holds them packed.
    pub(crate) fn without_weights(&self) -> Conv {
        Conv {
            cin: self.cin,
            cout: self.cout,
            kt: self.kt,
            kf: self.kf,
            weights: Tensor::default(),
            bias: self.bias.clone(),
            leaky: self.leaky.clone(),
            floor: self.floor.clone(),
        }
    }
}

/// A layer of the network.
#[derive(Clone, Debug)]
pub(crate) enum Layer {
    Conv(Box<Conv>),
    /// Max-pooling with stride equal to its kernel: `kt` rows (1 or 2) by `kf` values.
    Pool {
        kt: usize,
        kf: usize,
    },
}

impl Layer {
    /// The lag (see [`Network::lag`]) after this layer, in its output rows, given the lag
    /// before it: a convolution of `kt` taps in time adds `kt - 1`; pooling pairs of rows
    /// halves it, rounding up.
    pub(crate) fn lag_after(&self, lag: usize) -> usize {
        match self {
            Layer::Conv(c) => lag + c.kt - 1,
            Layer::Pool { kt: 2, .. } => lag.div_ceil(2),
            Layer::Pool { .. } => lag,
        }
    }
}

/// The network read from an ONNX export of speech_embedding.
#[derive(Clone, Debug)]
pub(crate) struct Network {
    pub(crate) layers: Vec<Layer>,
    pub(crate) mels: usize,
}

impl Network {
    /// Reads the layers of `bytes`: a Reshape to `[N, 1, T, mels]`, then a chain of Conv,
    /// LeakyRelu, Max (with a constant) and MaxPool, then a Reshape. Anything else is refused.
    pub(crate) fn from_onnx(bytes: &[u8], mels: usize) -> TractResult<Network> {
        let proto = tract_onnx::onnx().proto_model_for_read(&mut std::io::Cursor::new(bytes))?;
        let graph = proto.graph.as_ref().context("no graph")?;
        let inits: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let resolver = tract_onnx::data_resolver::FopenDataResolver;
        let constant = |name: &str| -> TractResult<Tensor> {
            let proto = inits
                .get(name)
                .with_context(|| format!("input {name} is not a constant"))?;
            tract_onnx::tensor::load_tensor(&resolver, proto, None)?
                .cast_to::<f32>()
                .map(|t| t.into_owned())
        };
        let scalar = |name: &str| -> TractResult<Tensor> {
            let t = constant(name)?;
            ensure!(t.len() == 1, "{name} is not a single value");
            Ok(tensor0(t.try_as_plain_ram()?.as_slice::<f32>()?[0]))
        };
        let nodes = &graph.node;
        ensure!(nodes.len() >= 3, "too few nodes");
        ensure!(
            nodes[0].op_type == "Reshape" && nodes[nodes.len() - 1].op_type == "Reshape",
            "expected Reshape first and last"
        );
        let mut layers: Vec<Layer> = vec![];
        let mut wire = nodes[0]
            .output
            .first()
            .context("Reshape without output")?
            .clone();
        for node in &nodes[1..nodes.len() - 1] {
            ensure!(
                node.input.first() == Some(&wire),
                "{} ({}) does not follow the previous layer",
                node.name,
                node.op_type
            );
            wire = node.output.first().context("node without output")?.clone();
            match node.op_type.as_str() {
                "Conv" => layers.push(Layer::Conv(Box::new(conv(node, &constant)?))),
                "LeakyRelu" => {
                    let alpha = node.get_attr_opt::<f32>("alpha")?.unwrap_or(0.01);
                    match layers.last_mut() {
                        Some(Layer::Conv(c)) if c.leaky.is_none() && c.floor.is_none() => {
                            c.leaky = Some(tensor0(alpha))
                        }
                        _ => bail!("LeakyRelu {} does not follow a convolution", node.name),
                    }
                }
                "Max" => {
                    ensure!(node.input.len() == 2, "Max {} is not binary", node.name);
                    let floor = scalar(&node.input[1])?;
                    match layers.last_mut() {
                        Some(Layer::Conv(c)) if c.floor.is_none() => c.floor = Some(floor),
                        _ => bail!("Max {} does not follow a convolution", node.name),
                    }
                }
                "MaxPool" => {
                    let kernel: TVec<usize> = node.get_attr_tvec("kernel_shape")?;
                    let strides: TVec<usize> = node
                        .get_attr_opt_tvec("strides")?
                        .unwrap_or_else(|| kernel.clone());
                    let pads: TVec<usize> = node
                        .get_attr_opt_tvec("pads")?
                        .unwrap_or_else(|| tvec![0; 4]);
                    ensure!(
                        kernel.len() == 2 && kernel == strides && pads.iter().all(|p| *p == 0),
                        "MaxPool {} is not an unpadded pooling with stride = kernel",
                        node.name
                    );
                    ensure!(
                        kernel[0] <= 2,
                        "MaxPool {} pools more than 2 rows",
                        node.name
                    );
                    layers.push(Layer::Pool {
                        kt: kernel[0],
                        kf: kernel[1],
                    });
                }
                other => bail!("unsupported operator {other} ({})", node.name),
            }
        }
        let net = Network { layers, mels };
        net.check()?;
        Ok(net)
    }

    /// Checks the chain of shapes: one input channel of `mels` values, channels that match,
    /// frequency sizes that pool evenly down to one value.
    pub(crate) fn check(&self) -> TractResult<()> {
        let (mut c, mut f) = (1, self.mels);
        for layer in &self.layers {
            match layer {
                Layer::Conv(conv) => {
                    ensure!(
                        conv.cin == c,
                        "a convolution takes {} channels, gets {c}",
                        conv.cin
                    );
                    c = conv.cout;
                }
                Layer::Pool { kf, .. } => {
                    ensure!(f % kf == 0, "pooling {f} values by {kf}");
                    f /= kf;
                }
            }
        }
        ensure!(f == 1, "the network ends with {f} frequency values, not 1");
        Ok(())
    }

    /// Size of the output vector.
    pub(crate) fn out_dim(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| match l {
                Layer::Conv(c) => Some(c.cout),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// Input frames per output step: the product of the time-poolings.
    pub(crate) fn stride(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Pool { kt, .. } => *kt,
                _ => 1,
            })
            .product()
    }

    /// Outputs a stream withholds: the first output row of step `s` is `s·g - lag` (in output
    /// steps), so the first `lag` steps only fill the layers.
    pub(crate) fn lag(&self) -> usize {
        self.layers
            .iter()
            .fold(0, |lag, layer| layer.lag_after(lag))
    }
}

/// Reads one Conv node.
fn conv(node: &NodeProto, constant: &dyn Fn(&str) -> TractResult<Tensor>) -> TractResult<Conv> {
    let w = constant(node.input.get(1).context("Conv without weights")?)?;
    ensure!(w.rank() == 4, "Conv {} weights are not 4-d", node.name);
    let (cout, cin, kt, kf) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    let group: usize = node.get_attr_opt("group")?.unwrap_or(1);
    let strides: TVec<usize> = node
        .get_attr_opt_tvec("strides")?
        .unwrap_or_else(|| tvec![1, 1]);
    let dilations: TVec<usize> = node
        .get_attr_opt_tvec("dilations")?
        .unwrap_or_else(|| tvec![1, 1]);
    let pads: TVec<usize> = node
        .get_attr_opt_tvec("pads")?
        .unwrap_or_else(|| tvec![0; 4]);
    ensure!(
        group == 1 && strides.iter().all(|s| *s == 1) && dilations.iter().all(|d| *d == 1),
        "Conv {} is grouped, strided or dilated",
        node.name
    );
    ensure!(
        pads.len() == 4 && pads[0] == 0 && pads[2] == 0,
        "Conv {} pads time",
        node.name
    );
    ensure!(
        kf % 2 == 1 && pads[1] == kf / 2 && pads[3] == kf / 2,
        "Conv {} is not 'same' along frequency",
        node.name
    );
    ensure!(kt >= 1, "Conv {} has an empty kernel", node.name);
    let weights = w.into_shape(&[cout, cin * kt * kf])?;
    let bias = match node.input.get(2) {
        Some(name) if !name.is_empty() => {
            let b = constant(name)?;
            ensure!(
                b.len() == cout,
                "Conv {} bias has {} values",
                node.name,
                b.len()
            );
            Some(b.into_shape(&[cout])?)
        }
        _ => None,
    };
    Ok(Conv {
        cin,
        cout,
        kt,
        kf,
        weights,
        bias,
        leaky: None,
        floor: None,
    })
}
