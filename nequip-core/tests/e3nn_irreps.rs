//! `Irreps`: parsing, printing, errors, sort, simplify, slices, products.

use nequip_core::e3nn::{E3nnError, Irrep, Irreps};

#[test]
fn parse_and_print() {
    let ir: Irreps = "16x0e+8x1o".parse().unwrap();
    assert_eq!(ir.to_string(), "16x0e+8x1o");
    assert_eq!(ir.dim(), 16 + 24);
    assert_eq!(ir.num_irreps(), 24);
    assert_eq!(ir.len(), 2);
    let spaced: Irreps = " 2x1e + 0o + 3x2y".parse().unwrap();
    assert_eq!(spaced.to_string(), "2x1e+1x0o+3x2e");
    assert_eq!("".parse::<Irreps>().unwrap().len(), 0);
    assert_eq!("1y".parse::<Irrep>().unwrap(), Irrep { l: 1, p: -1 });
    assert_eq!(
        Irreps::spherical_harmonics(3, -1).to_string(),
        "1x0e+1x1o+1x2e+1x3o"
    );
    assert_eq!(
        Irreps::spherical_harmonics(2, 1).to_string(),
        "1x0e+1x1e+1x2e"
    );
}

#[test]
fn bad_strings_are_errors() {
    for s in ["16x0q", "x1o", "1x", "ax1o", "1o+", "-1x1o", "1x-1e", "3"] {
        let e = s.parse::<Irreps>().unwrap_err();
        assert_eq!(e, E3nnError::BadIrreps(s.to_string()), "{s}");
    }
    assert!(matches!("2q".parse::<Irrep>(), Err(E3nnError::BadIrrep(_))));
    assert!(matches!(Irrep::new(1, 2), Err(E3nnError::BadParity(2))));
    assert!(Irreps::from_tuples(&[(1, 0, 0)]).is_err());
}

#[test]
fn slices_count_simplify_sort() {
    let ir: Irreps = "1e+1e+0e+1e+0x2o".parse().unwrap();
    assert_eq!(ir.slices(), vec![0..3, 3..6, 6..7, 7..10, 10..10]);
    assert_eq!(ir.count("1e".parse().unwrap()), 3);
    assert_eq!(ir.count("2o".parse().unwrap()), 0);
    assert_eq!(ir.simplify().to_string(), "2x1e+1x0e+1x1e");
    assert_eq!(ir.remove_zero_multiplicities().len(), 4);
    let s = "2o + 1e + 0e + 1e".parse::<Irreps>().unwrap().sort();
    assert_eq!(s.irreps.to_string(), "1x0e+1x1e+1x1e+1x2o");
    assert_eq!(s.p, vec![3, 1, 0, 2]);
    assert_eq!(s.inv, vec![2, 1, 3, 0]);
    // 0o < 0e < 1o < 1e
    let t: Irreps = "1x1e+1x0e+1x1o+1x0o".parse().unwrap();
    assert_eq!(t.sort().irreps.to_string(), "1x0o+1x0e+1x1o+1x1e");
    assert_eq!(t.regroup().to_string(), "1x0o+1x0e+1x1o+1x1e");
    assert_eq!(t.lmax(), Some(1));
    assert_eq!(t.ls(), vec![1, 0, 1, 0]);
}

#[test]
fn products() {
    let a: Irrep = "1o".parse().unwrap();
    let b: Irrep = "2e".parse().unwrap();
    let v: Vec<String> = a.product(&b).iter().map(|x| x.to_string()).collect();
    assert_eq!(v, ["1o", "2o", "3o"]);
    let x: Irreps = "2x0e+1x1o".parse().unwrap();
    let y: Irreps = "1x1o".parse().unwrap();
    assert_eq!(x.tensor_product(&y).to_string(), "1x0e+2x1o+1x1e+1x2e");
    assert_eq!(x.repeat(2).to_string(), "2x0e+1x1o+2x0e+1x1o");
    assert_eq!(x.concat(&y).simplify().to_string(), "2x0e+2x1o");
}
