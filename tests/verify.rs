//! The template check against its reference: wide-band cepstra and the DTW costs computed with
//! numpy, scipy and librosa (`tests/fixtures/make_verify_fixture.py`) on real speech.

mod common;

use common::{fixture, max_abs_diff, npy_rows, speech};
use hark::features::cepstra::{Cepstra, Cepstrum};
use hark::model::templates::match_cost;

fn cepstra(samples: &[f32]) -> Vec<Cepstrum> {
    Cepstra::new().of(samples)
}

#[test]
fn cepstra_match_the_librosa_reference() {
    let x = speech();
    for (name, range) in [
        ("verify_query.npy", 4_000..34_400),
        ("verify_template.npy", 17_600..32_000),
        ("verify_other.npy", 48_000..78_400),
    ] {
        let want = npy_rows(name);
        let got = cepstra(&x[range]);
        // dB-scale cepstra of 40 bands: f32 against f64 arithmetic.
        let d = max_abs_diff(&got, &want);
        assert!(d < 2e-2, "{name}: {d}");
    }
}

#[test]
fn match_costs_match_the_numpy_reference() {
    let (_, costs) = hark::npy::read(&fixture("verify_costs.npy")).unwrap();
    let rows = |name| -> Vec<Cepstrum> {
        npy_rows(name)
            .into_iter()
            .map(|r| r.try_into().unwrap())
            .collect()
    };
    let (template, query, other) = (
        rows("verify_template.npy"),
        rows("verify_query.npy"),
        rows("verify_other.npy"),
    );
    // The word inside its own surroundings costs nothing; another word costs a lot.
    assert_eq!(costs[0], 0.0);
    assert!(costs[1] > 20.0);
    for (q, want) in [(&query, costs[0]), (&other, costs[1])] {
        let got = match_cost(&template, q);
        assert!((got - want).abs() < 1e-3 * want.max(1.0), "{got} vs {want}");
    }
    // And from hark's own cepstra of the audio.
    let x = speech();
    let got = match_cost(&cepstra(&x[17_600..32_000]), &cepstra(&x[48_000..78_400]));
    assert!(
        (got - costs[1]).abs() < 1e-2 * costs[1],
        "{got} vs {}",
        costs[1]
    );
}
