//! The gRPC codec of taskd's services: prost's, except that a request that
//! does not decode (garbage bytes, invalid UTF-8 in a string, a truncated
//! message) is the client's mistake and says so, with INVALID_ARGUMENT,
//! rather than INTERNAL, which reads as a fault of the server.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Used by the generated service code (`codec_path` in build.rs).
#[derive(Debug, Clone)]
pub struct RequestCheckingCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for RequestCheckingCodec<T, U> {
    fn default() -> Self {
        RequestCheckingCodec { _types: PhantomData }
    }
}

impl<T, U> Codec for RequestCheckingCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

/// prost's decoder with the error of a bad message turned into the client's.
#[derive(Debug)]
pub struct RequestDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!("request: not a valid protobuf message: {}", status.message()))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
