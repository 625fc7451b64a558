//! `nequip serve --ipi ADDRESS`: a client of the i-PI socket protocol, so that i-PI, ASE's
//! `SocketIOCalculator` and other i-PI servers drive molecular dynamics with a nequip-rs model,
//! without Python on the model side. The server sends positions and the cell (atomic units);
//! the client answers with the energy, forces and virial of [`Potential::compute`] (the MD
//! inference path the C library uses). The protocol sends no species: they come from
//! `--structure` (an extended XYZ file of the same atoms in the same order), as for i-PI's own
//! drivers; its `pbc` says whether the cell the server sends is periodic.
//!
//! Protocol (i-PI `ipi/interfaces/sockets.py`, ASE `ase/calculators/socketio.py`): 12-byte
//! space-padded headers; `STATUS` → `NEEDINIT` | `READY` | `HAVEDATA`; `INIT` (bead index,
//! length-prefixed string); `POSDATA` (cell^T and its inverse^T as 9 float64 each, Bohr;
//! int32 atom count; positions, Bohr); `GETFORCE` → `FORCEREADY`, energy (Hartree), atom count,
//! forces (Hartree/Bohr), virial^T (Hartree), extra string; `EXIT`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use nequip_core::data::extxyz::read_extxyz;
use nequip_core::data::type_mapper::chemical_symbol;
use nequip_core::potential::{Outputs, Potential, Request};

/// ASE's (CODATA 2014) Bohr radius in Å and Hartree in eV, as its SocketIOCalculator converts.
const BOHR: f64 = 0.5291772105638411;
const HARTREE: f64 = 27.211386024367243;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The model file (training output, `deploy build` or `import`).
    #[arg(long)]
    pub model: PathBuf,
    /// The i-PI server: `unix:NAME` (the socket /tmp/ipi_NAME, or NAME itself when it is a
    /// path) or `HOST:PORT` (TCP).
    #[arg(long)]
    pub ipi: String,
    /// The atoms (extended XYZ, first frame): species in the server's order, and `pbc`.
    #[arg(long)]
    pub structure: PathBuf,
    /// `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Threads of libtorch and the native kernels (default: libtorch's).
    #[arg(long)]
    pub threads: Option<i32>,
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(address: &str) -> anyhow::Result<Box<dyn Stream>> {
    if let Some(name) = address.strip_prefix("unix:") {
        let path = if name.contains('/') { PathBuf::from(name) } else { PathBuf::from(format!("/tmp/ipi_{name}")) };
        let s = UnixStream::connect(&path).with_context(|| format!("--ipi {address}: cannot connect to the unix socket {}", path.display()))?;
        return Ok(Box::new(s));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            let s = TcpStream::connect((host, port.parse::<u16>()?)).with_context(|| format!("--ipi {address}: cannot connect to {host} port {port}"))?;
            s.set_nodelay(true)?;
            Ok(Box::new(s))
        }
        _ => bail!("--ipi {address}: expected unix:NAME or HOST:PORT"),
    }
}

struct Conn {
    s: Box<dyn Stream>,
}

impl Conn {
    fn header(&mut self) -> anyhow::Result<Option<String>> {
        let mut h = [0u8; 12];
        match self.s.read_exact(&mut h) {
            Ok(()) => Ok(Some(String::from_utf8_lossy(&h).trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e).context("reading a message header from the i-PI server"),
        }
    }
    fn send_header(&mut self, h: &str) -> anyhow::Result<()> {
        Ok(self.s.write_all(format!("{h:<12}").as_bytes())?)
    }
    fn i32(&mut self) -> anyhow::Result<i32> {
        let mut b = [0u8; 4];
        self.s.read_exact(&mut b)?;
        Ok(i32::from_le_bytes(b))
    }
    fn f64s(&mut self, n: usize) -> anyhow::Result<Vec<f64>> {
        let mut b = vec![0u8; 8 * n];
        self.s.read_exact(&mut b)?;
        Ok(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
    }
    fn send_f64s(&mut self, v: &[f64]) -> anyhow::Result<()> {
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Ok(self.s.write_all(&b)?)
    }
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let pot = Potential::load(&a.model, Some(&a.device))?;
    if let Some(t) = a.threads {
        if t < 1 {
            bail!("--threads must be >= 1, got {t}");
        }
        tch::set_num_threads(t);
    }
    let frames = read_extxyz(&a.structure).with_context(|| format!("--structure {}", a.structure.display()))?;
    let Some(frame) = frames.into_iter().next() else { bail!("--structure {}: the file has no frames", a.structure.display()) };
    let symbols: Vec<String> = match (&frame.symbols, &frame.numbers) {
        (Some(s), _) => s.clone(),
        (None, Some(z)) => z.iter().map(|&z| chemical_symbol(z).map(str::to_string).ok_or_else(|| anyhow::anyhow!("--structure: atomic number {z} is not an element"))).collect::<Result<_, _>>()?,
        _ => bail!("--structure {}: no species (column `species` or `Z`)", a.structure.display()),
    };
    let types: Vec<i64> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = pot.type_names().iter().position(|n| n == s);
            t.map(|t| t as i64).ok_or_else(|| anyhow::anyhow!("--structure {}: atom {i} is {s}, which the model does not know (its types: {})", a.structure.display(), pot.type_names().join(", ")))
        })
        .collect::<anyhow::Result<_>>()?;
    let periodic = frame.pbc;
    let mut conn = Conn { s: connect(&a.ipi)? };
    eprintln!("nequip serve: connected to {} ({} atoms, model {})", a.ipi, types.len(), a.model.display());
    let mut initialized = false;
    let mut result: Option<Outputs> = None;
    let mut steps = 0usize;
    loop {
        let Some(h) = conn.header()? else {
            eprintln!("nequip serve: the server closed the connection after {steps} calculations");
            return Ok(ExitCode::SUCCESS);
        };
        match h.as_str() {
            "STATUS" => conn.send_header(if !initialized { "NEEDINIT" } else if result.is_some() { "HAVEDATA" } else { "READY" })?,
            "INIT" => {
                let _bead = conn.i32()?;
                let len = conn.i32()?;
                let mut s = vec![0u8; len.max(0) as usize];
                conn.s.read_exact(&mut s)?;
                initialized = true;
            }
            "POSDATA" => {
                let cell_t = conn.f64s(9)?;
                let _inverse = conn.f64s(9)?;
                let n = conn.i32()?;
                if n as usize != types.len() {
                    bail!("the i-PI server sent {n} atoms, but --structure {} has {}", a.structure.display(), types.len());
                }
                let pos = conn.f64s(3 * types.len())?;
                let pos: Vec<[f64; 3]> = pos.chunks_exact(3).map(|c| [c[0] * BOHR, c[1] * BOHR, c[2] * BOHR]).collect();
                // the server sends cell^T row-major: cell[a][k] = cell_t[3k + a]
                let cell: [[f64; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|k| cell_t[3 * k + r] * BOHR));
                let has_cell = periodic.iter().any(|&p| p);
                let o = pot.compute(&pos, &types, has_cell.then_some(&cell), periodic, Request { forces: true, virial: true, atom_energies: false })?;
                result = Some(o);
                steps += 1;
            }
            "GETFORCE" => {
                let Some(o) = result.take() else { bail!("the i-PI server asked for forces before sending positions") };
                conn.send_header("FORCEREADY")?;
                conn.send_f64s(&[o.energy / HARTREE])?;
                conn.s.write_all(&(types.len() as i32).to_le_bytes())?;
                let f: Vec<f64> = o.forces.unwrap_or_default().iter().flatten().map(|x| x * BOHR / HARTREE).collect();
                conn.send_f64s(&f)?;
                let w = o.virial.unwrap_or_default();
                let w_t: Vec<f64> = (0..9).map(|i| w[i % 3][i / 3] / HARTREE).collect();
                conn.send_f64s(&w_t)?;
                conn.s.write_all(&0i32.to_le_bytes())?;
            }
            "EXIT" => {
                eprintln!("nequip serve: EXIT after {steps} calculations");
                return Ok(ExitCode::SUCCESS);
            }
            other => bail!("the i-PI server sent an unknown message `{other}`"),
        }
    }
}
