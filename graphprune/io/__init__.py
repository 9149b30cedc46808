"""Loading and saving ONNX models safely: :mod:`.read` (checks, external data) and :mod:`.write`
(atomic, streamed, external data for big models)."""
from .read import ModelFile, check_external_location, external_files_of, load_model, model_byte_size, read_model
from .write import (EXTERNAL_ALIGNMENT, EXTERNAL_DATA_THRESHOLD, EXTERNAL_TENSOR_MIN_BYTES, PROTOBUF_LIMIT,
                    check_output_path, save_model)

__all__ = ["EXTERNAL_ALIGNMENT", "EXTERNAL_DATA_THRESHOLD", "EXTERNAL_TENSOR_MIN_BYTES", "PROTOBUF_LIMIT",
           "ModelFile", "check_external_location", "check_output_path", "external_files_of", "load_model",
           "model_byte_size", "read_model", "save_model"]
