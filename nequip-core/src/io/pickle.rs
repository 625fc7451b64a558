//! A small pickle reader: the subset of protocol 2 (plus the protocol-4 framing opcodes) that
//! `torch.save` writes for state dicts and nequip's `trainer.pth`. Python objects are kept
//! symbolic: a global is [`PValue::Global`], a call (REDUCE / NEWOBJ) is [`PValue::Call`],
//! except `collections.OrderedDict()`, which becomes a dict, and `_rebuild_tensor_v2`, which
//! becomes [`PValue::Tensor`]. Never executes anything; malformed input is an error, not a panic.

use std::collections::HashMap;

/// A value of the pickle machine.
#[derive(Debug, Clone, PartialEq)]
pub enum PValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<PValue>),
    List(Vec<PValue>),
    Dict(Vec<(PValue, PValue)>),
    /// `module.name`
    Global(String, String),
    /// `func(*args)` of a global we do not interpret.
    Call(Box<PValue>, Vec<PValue>),
    /// A persistent id (torch: `('storage', StorageType, key, location, numel)`).
    PersId(Box<PValue>),
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    Tensor(TensorRef),
}

/// Where a tensor's data lives in the checkpoint and how to view it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Storage class name, e.g. `DoubleStorage`.
    pub storage_type: String,
    /// The file `data/<key>` in the archive.
    pub key: String,
    pub storage_numel: i64,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

impl PValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            PValue::Int(i) => Some(*i),
            PValue::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    fn ints(&self) -> Option<Vec<i64>> {
        match self {
            PValue::Tuple(v) | PValue::List(v) => v.iter().map(PValue::as_int).collect(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("pickle: {message} (at byte {pos})")]
pub struct PickleError {
    pub message: String,
    pub pos: usize,
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<PValue>,
    marks: Vec<usize>,
    memo: HashMap<u32, PValue>,
}

/// Parse a pickle stream into its top-level value.
pub fn parse(data: &[u8]) -> Result<PValue, PickleError> {
    let mut m = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() };
    m.run()
}

impl<'a> Machine<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { message: message.into(), pos: self.pos })
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.pos + n > self.data.len() {
            return self.err("unexpected end of data");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&c| c == b'\n') else { return self.err("unterminated line") };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn string(&mut self, n: usize) -> Result<String, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.err("invalid UTF-8 in string"),
        }
    }
    fn pop(&mut self) -> Result<PValue, PickleError> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }
    fn top(&mut self) -> Result<&mut PValue, PickleError> {
        let pos = self.pos;
        self.stack.last_mut().ok_or(PickleError { message: "stack underflow".into(), pos })
    }
    fn pop_mark(&mut self) -> Result<Vec<PValue>, PickleError> {
        let Some(m) = self.marks.pop() else { return self.err("no MARK") };
        if m > self.stack.len() {
            return self.err("MARK beyond the stack");
        }
        Ok(self.stack.split_off(m))
    }
    fn memo_get(&mut self, i: u32) -> Result<(), PickleError> {
        match self.memo.get(&i) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => self.err(format!("memo key {i} not found")),
        }
    }
    fn memo_put(&mut self, i: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn run(&mut self) -> Result<PValue, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(),
                b'N' => self.stack.push(PValue::None),
                0x88 => self.stack.push(PValue::Bool(true)),
                0x89 => self.stack.push(PValue::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(PValue::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(PValue::Int(v as i64))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(PValue::Int(v as i64))
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return self.err("LONG1 integer wider than 64 bits");
                    }
                    let mut buf = if b.last().is_some_and(|x| x & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    buf[..n].copy_from_slice(b);
                    self.stack.push(PValue::Int(i64::from_le_bytes(buf)))
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(PValue::Float(f64::from_be_bytes(a)))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    self.stack.push(PValue::Str(s))
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.stack.push(PValue::Str(s))
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(PValue::Str(s))
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(PValue::Str(s))
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(PValue::Bytes(b))
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(PValue::Bytes(b))
                }
                b'(' => self.marks.push(self.stack.len()),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(PValue::Tuple(items))
                }
                b')' => self.stack.push(PValue::Tuple(vec![])),
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return self.err("stack underflow in TUPLEn");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(PValue::Tuple(items))
                }
                b']' => self.stack.push(PValue::List(vec![])),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(PValue::List(items))
                }
                b'}' => self.stack.push(PValue::Dict(vec![])),
                b'd' => {
                    let items = self.pop_mark()?;
                    let d = pairs(items).map_err(|m| PickleError { message: m, pos: self.pos })?;
                    self.stack.push(PValue::Dict(d))
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        PValue::List(l) => l.push(v),
                        _ => return self.err("APPEND to a non-list"),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        PValue::List(l) => l.extend(items),
                        _ => return self.err("APPENDS to a non-list"),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        PValue::Dict(d) => d.push((k, v)),
                        _ => return self.err("SETITEM on a non-dict"),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let kv = pairs(items).map_err(|m| PickleError { message: m, pos: self.pos })?;
                    match self.top()? {
                        PValue::Dict(d) => d.extend(kv),
                        _ => return self.err("SETITEMS on a non-dict"),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(PValue::Global(module, name))
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (PValue::Str(m), PValue::Str(n)) => self.stack.push(PValue::Global(m, n)),
                        _ => return self.err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'Q' => {
                    let id = self.pop()?;
                    self.stack.push(PValue::PersId(Box::new(id)))
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = match args {
                        PValue::Tuple(a) => a,
                        _ => return self.err("REDUCE arguments must be a tuple"),
                    };
                    let v = reduce(func, args).map_err(|m| PickleError { message: m, pos: self.pos })?;
                    self.stack.push(v)
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let args = match args {
                        PValue::Tuple(a) => a,
                        _ => return self.err("NEWOBJ arguments must be a tuple"),
                    };
                    self.stack.push(PValue::Call(Box::new(cls), args))
                }
                b'b' => {
                    // BUILD: object state (e.g. the state dict's `_metadata`); not needed.
                    self.pop()?;
                    self.top()?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v)
                }
                other => return self.err(format!("unsupported pickle opcode 0x{other:02x}")),
            }
        }
    }
}

fn pairs(items: Vec<PValue>) -> Result<Vec<(PValue, PValue)>, String> {
    if items.len() % 2 != 0 {
        return Err("odd number of items for a dict".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn reduce(func: PValue, args: Vec<PValue>) -> Result<PValue, String> {
    match &func {
        PValue::Global(m, n) if m == "collections" && n == "OrderedDict" => match args.first() {
            None => Ok(PValue::Dict(vec![])),
            Some(PValue::List(items)) => items
                .iter()
                .map(|kv| match kv {
                    PValue::Tuple(p) if p.len() == 2 => Ok((p[0].clone(), p[1].clone())),
                    _ => Err("OrderedDict items must be pairs".to_string()),
                })
                .collect::<Result<_, _>>()
                .map(PValue::Dict),
            Some(_) => Ok(PValue::Call(Box::new(func), args)),
        },
        PValue::Global(m, n) if m == "torch._utils" && n == "_rebuild_tensor_v2" => rebuild_tensor(&args).map(PValue::Tensor),
        _ => Ok(PValue::Call(Box::new(func), args)),
    }
}

/// `_rebuild_tensor_v2(PersId(('storage', Global(torch, XStorage), key, location, numel)), offset, size, stride, ...)`
fn rebuild_tensor(args: &[PValue]) -> Result<TensorRef, String> {
    let bad = || "malformed _rebuild_tensor_v2 arguments".to_string();
    let [PValue::PersId(id), offset, size, stride, ..] = args else { return Err(bad()) };
    let PValue::Tuple(id) = id.as_ref() else { return Err(bad()) };
    let [PValue::Str(tag), storage, PValue::Str(key), _location, numel, ..] = id.as_slice() else { return Err(bad()) };
    if tag != "storage" {
        return Err(format!("unknown persistent id `{tag}`"));
    }
    let storage_type = match storage {
        PValue::Global(_, n) => n.clone(),
        _ => return Err(bad()),
    };
    Ok(TensorRef {
        storage_type,
        key: key.clone(),
        storage_numel: numel.as_int().ok_or_else(bad)?,
        offset: offset.as_int().ok_or_else(bad)?,
        size: size.ints().ok_or_else(bad)?,
        stride: stride.ints().ok_or_else(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_protocol2_stream() {
        // pickle.dumps(collections.OrderedDict([('a', 1), ('b', (2.5, True, None))]), protocol=2)
        let data: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03G@\x04\x00\x00\x00\x00\x00\x00\x88N\x87q\x04u.";
        let v = parse(data).unwrap();
        assert_eq!(
            v,
            PValue::Dict(vec![
                (PValue::Str("a".into()), PValue::Int(1)),
                (PValue::Str("b".into()), PValue::Tuple(vec![PValue::Float(2.5), PValue::Bool(true), PValue::None])),
            ])
        );
    }

    #[test]
    fn malformed_streams_are_errors() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\x80\x02K").unwrap_err().message.contains("end of data"));
        assert!(parse(b"\x80\x02\xff.").unwrap_err().message.contains("unsupported pickle opcode 0xff"));
        assert!(parse(b"\x80\x02h\x05.").unwrap_err().message.contains("memo key 5"));
        assert!(parse(b"\x80\x02u.").unwrap_err().message.contains("no MARK"));
    }
}
