//! Hand-written `prost` message types for the subset of the ONNX protobuf schema that voxmask
//! writes and reads: a model with one graph of nodes, initializers, typed inputs and outputs, opset
//! imports and metadata.
//!
//! Spec: `onnx/onnx.proto` in the ONNX project's repository (ONNX IR version 8, opset 17). Field numbers and wire types follow the
//! schema exactly, including its packing: repeated scalars are unpacked (proto2's default) unless
//! the schema marks them `[packed = true]`. Fields voxmask never uses are left out; `prost` skips
//! them when decoding a model written by another tool. No `protoc` or build script is involved.
//!
//! The schema is proto2, where every singular scalar has presence. Here most scalars are plain
//! values (an empty string or a zero is simply not written, and reads back as the same default,
//! which is what every ONNX reader assumes), so callers can use `proto.producer_name` directly.
//! The exception is `AttributeProto`'s `f`, `i` and `s`: an attribute `axis = 0` must still carry
//! its value on the wire, so those stay `Option` and are written whenever they are `Some`.

/// A complete model file: one graph plus the versions and metadata a runtime checks first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// ONNX IR version the file follows (8 for opset 17).
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "4")]
    pub domain: String,
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Operator sets the graph's nodes refer to; the default domain is the empty string.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Free-form key/value pairs; keys must be unique (the ONNX checker rejects duplicates).
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// One key/value string pair (used for model metadata).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// An operator-set version a model depends on.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Empty (or absent) means the default `ai.onnx` domain.
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// A computation graph: nodes in topological order, constant tensors, and the graph's interface.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors (weights); referenced from nodes by name.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Optional type information for intermediate values.
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(string, tag = "7")]
    pub domain: String,
}

/// A named operator attribute; `type` says which one of the value fields is meaningful.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// UTF-8 string value (bytes on the wire).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, packed = "false", tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    #[prost(string, tag = "13")]
    pub doc_string: String,
    #[prost(enumeration = "attribute_proto::AttributeType", tag = "20")]
    pub r#type: i32,
}

/// Nested types of [`AttributeProto`].
pub mod attribute_proto {
    /// Discriminator for [`super::AttributeProto`]'s value fields (numbers from onnx.proto).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum AttributeType {
        Undefined = 0,
        Float = 1,
        Int = 2,
        String = 3,
        Tensor = 4,
        Graph = 5,
        Floats = 6,
        Ints = 7,
        Strings = 8,
        Tensors = 9,
        Graphs = 10,
        SparseTensor = 11,
        SparseTensors = 12,
        TypeProto = 13,
        TypeProtos = 14,
    }
}

/// A graph input or output (or intermediate value) with its type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// The type of a value; voxmask only uses dense tensors.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
    #[prost(string, tag = "6")]
    pub denotation: String,
}

/// Nested types of [`TypeProto`].
pub mod type_proto {
    /// A dense tensor type: element type (a [`super::tensor_proto::DataType`] number) and shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }

    /// The `value` oneof; the sequence, map, optional, sparse and opaque arms are not modelled.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }
}

/// A tensor shape whose dimensions are each a number, a symbolic name, or unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

/// Nested types of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// One dimension; `value == None` means unknown.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
        #[prost(string, tag = "3")]
        pub denotation: String,
    }

    /// Nested types of [`Dimension`].
    pub mod dimension {
        /// A fixed size or a symbolic (dynamic) axis name such as `"batch"`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

/// A dense constant tensor. The values live in exactly one of `float_data`, `int32_data`,
/// `int64_data`, `double_data` or `raw_data` (little-endian bytes of the element type).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// A [`tensor_proto::DataType`] number.
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(string, tag = "12")]
    pub doc_string: String,
}

/// Nested types of [`TensorProto`].
pub mod tensor_proto {
    /// Element types (numbers from onnx.proto). Only the common ones are listed; an unknown
    /// number decodes fine into `TensorProto::data_type` and simply has no variant here.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum DataType {
        Undefined = 0,
        Float = 1,
        Uint8 = 2,
        Int8 = 3,
        Uint16 = 4,
        Int16 = 5,
        Int32 = 6,
        Int64 = 7,
        String = 8,
        Bool = 9,
        Float16 = 10,
        Double = 11,
        Uint32 = 12,
        Uint64 = 13,
        Complex64 = 14,
        Complex128 = 15,
        Bfloat16 = 16,
    }
}

impl TensorProto {
    /// Number of elements the `dims` promise, or `None` if a dim is negative or the product
    /// overflows (a malformed file).
    pub fn element_count(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)))
    }

    /// The values of a FLOAT tensor, from little-endian `raw_data` if it is non-empty, else from
    /// `float_data`, checked
    /// against `dims`.
    pub fn f32_values(&self) -> crate::Result<Vec<f32>> {
        self.expect_type(tensor_proto::DataType::Float)?;
        let values = if self.raw_data.is_empty() {
            self.float_data.clone()
        } else {
            decode_le::<4, f32>(&self.raw_data, self.display_name(), f32::from_le_bytes)?
        };
        self.check_count(values)
    }

    /// The values of an INT64 tensor, from little-endian `raw_data` if it is non-empty, else from
    /// `int64_data`, checked
    /// against `dims`.
    pub fn i64_values(&self) -> crate::Result<Vec<i64>> {
        self.expect_type(tensor_proto::DataType::Int64)?;
        let values = if self.raw_data.is_empty() {
            self.int64_data.clone()
        } else {
            decode_le::<8, i64>(&self.raw_data, self.display_name(), i64::from_le_bytes)?
        };
        self.check_count(values)
    }

    fn display_name(&self) -> &str {
        if self.name.is_empty() { "<unnamed>" } else { &self.name }
    }

    fn expect_type(&self, want: tensor_proto::DataType) -> crate::Result<()> {
        let got = self.data_type;
        if got == want as i32 {
            Ok(())
        } else {
            Err(crate::Error::Mismatch {
                what: format!("data type of tensor {}", self.display_name()),
                expected: format!("{want:?} ({})", want as i32),
                got: got.to_string(),
            })
        }
    }

    fn check_count<T>(&self, values: Vec<T>) -> crate::Result<Vec<T>> {
        match self.element_count() {
            Some(n) if n == values.len() => Ok(values),
            n => Err(crate::Error::Mismatch {
                what: format!("element count of tensor {} (dims {:?})", self.display_name(), self.dims),
                expected: n.map_or_else(|| "a valid shape".to_owned(), |n| n.to_string()),
                got: values.len().to_string(),
            }),
        }
    }
}

fn decode_le<const N: usize, T>(raw: &[u8], name: &str, from: fn([u8; N]) -> T) -> crate::Result<Vec<T>> {
    let chunks = raw.chunks_exact(N);
    if !chunks.remainder().is_empty() {
        return Err(crate::Error::Mismatch {
            what: format!("raw_data length of tensor {name}"),
            expected: format!("a multiple of {N} bytes"),
            got: format!("{} bytes", raw.len()),
        });
    }
    Ok(chunks
        .map(|c| {
            let mut bytes = [0u8; N];
            bytes.copy_from_slice(c);
            from(bytes)
        })
        .collect())
}

/// Reads graph inputs or outputs back as `(name, dims)`, with `None` for a dynamic axis (a
/// symbolic `dim_param` or an unknown dimension). A value whose type is not a tensor, or that has
/// no shape, gets an empty dim list (callers checking the rank refuse it).
pub fn value_infos(values: &[ValueInfoProto]) -> Vec<(String, Vec<Option<i64>>)> {
    values
        .iter()
        .map(|v| {
            let shape = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(type_proto::Value::TensorType(t)) => t.shape.as_ref(),
                None => None,
            };
            let dims = shape.map_or_else(Vec::new, |s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(tensor_shape_proto::dimension::Value::DimValue(n)) => Some(n),
                        _ => None,
                    })
                    .collect()
            });
            (v.name.clone(), dims)
        })
        .collect()
}
