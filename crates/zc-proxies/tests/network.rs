//! The built network agrees with the search space's analytic counts, initialises like
//! PyTorch, and rejects weights of the wrong shape.

use std::path::PathBuf;

use zc_proxies::network::ParamRole;
use zc_proxies::{Nb201Network, ProxyError, Weights, load_batches};
use zc_space::Cell;

#[test]
fn param_count_equals_the_analytic_count_for_every_cell() {
    for cell in Cell::all() {
        for classes in [10, 120] {
            let net = Nb201Network::new(cell, classes);
            assert_eq!(
                net.param_count() as u64,
                cell.param_count(classes),
                "{cell}"
            );
        }
    }
}

#[test]
fn init_is_pytorch_default_and_deterministic() {
    let cell: Cell =
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
            .parse()
            .unwrap();
    let net = Nb201Network::new(cell, 10);
    let a = Weights::init(&net, 7);
    assert_eq!(a, Weights::init(&net, 7));
    assert_ne!(a, Weights::init(&net, 8));
    for (i, p) in net.params().iter().enumerate() {
        let v = a.get(i);
        assert_eq!(v.len(), p.numel());
        match p.role {
            ParamRole::Weight { fan_in } | ParamRole::Bias { fan_in } => {
                let bound = 1.0 / (fan_in as f32).sqrt();
                assert!(v.iter().all(|x| x.abs() <= bound), "{}", p.name);
                // Uniform on [-b, b]: the largest draw is close to the bound for big tensors.
                if v.len() >= 1000 {
                    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    assert!(max > 0.99 * bound, "{}", p.name);
                }
            }
            ParamRole::BnGamma => assert!(v.iter().all(|&x| x == 1.0)),
            ParamRole::BnBeta => assert!(v.iter().all(|&x| x == 0.0)),
        }
    }
}

#[test]
fn loading_fixture_weights_for_the_wrong_class_count_is_an_error() {
    let file = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/fixtures/parity/b_cheap.safetensors"
    ));
    let cell: Cell =
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
            .parse()
            .unwrap();
    let err = Weights::load(&Nb201Network::new(cell, 100), &file).unwrap_err();
    assert!(
        matches!(err, ProxyError::BadTensor { ref name, .. } if name == "top.classifier.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("100 classes"), "{err}");
    // A cell with a conv the file lacks names the missing tensor.
    let other: Cell =
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
            .parse()
            .unwrap();
    let err = Weights::load(&Nb201Network::new(other, 10), &file).unwrap_err();
    assert!(
        err.to_string()
            .contains("stack_cell1.0.options.2.op.1.weight"),
        "{err}"
    );
    let batch = load_batches(&file).unwrap().remove(0);
    assert_eq!(
        (batch.batch_size, batch.resolution, batch.labels.len()),
        (64, 32, 64)
    );
    let missing = load_batches(&file.with_file_name("nope.safetensors")).unwrap_err();
    assert!(
        missing.to_string().contains("nope.safetensors"),
        "{missing}"
    );
}
