use napi::bindgen_prelude::{BigInt, Buffer};
use napi::{Env, Result};
use napi_derive::napi;
use perp_signal_core::varint;

use crate::error;

/// Encodes unsigned integers as concatenated LEB128 varints.
#[napi(js_name = "encodeUvarints")]
pub fn encode_uvarints(env: Env, values: Vec<BigInt>) -> Result<Buffer> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for v in values {
        let (signed, value, lossless) = v.get_u64();
        if signed || !lossless {
            return Err(error::invalid_arg(
                &env,
                "varint values must be integers in 0..2^64-1",
            ));
        }
        varint::put_uvarint(&mut out, value);
    }
    Ok(out.into())
}

/// Decodes every varint in `buf`. The buffer is borrowed from JS, not copied.
#[napi(js_name = "decodeUvarints")]
pub fn decode_uvarints(env: Env, buf: &[u8]) -> Result<Vec<BigInt>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let v = varint::get_uvarint(buf, &mut pos).map_err(|e| error::codec(&env, e))?;
        out.push(BigInt::from(v));
    }
    Ok(out)
}
