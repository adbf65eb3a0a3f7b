"""moss_client: MOSS from Python -- identities, model encryption, attested KeyService calls and
encrypted inference, byte for byte interoperable with the C++ ``moss`` client.

    from moss_client import Identity, KeyServiceClient, encrypt_model, save_key, infer
"""
from .attestation import (Claims, Policy, simulated_measurement, verify_attested_certificate,
                          verify_dcap_quote, verify_evidence, verify_simulated_evidence)
from .config import ClientConfig
from .errors import (AlreadyExists, AttestationError, DataLoss, DeadlineExceeded,
                     FailedPrecondition, Internal, InvalidArgument, MossError, NotFound,
                     OutOfRange, PermissionDenied, ResourceExhausted, Unauthenticated,
                     Unavailable, Unimplemented)
from .formats import (EnvelopeHeader, decrypt_model, decrypt_model_file, encrypt_model,
                      encrypt_model_file, load_key, open_envelope, save_key, seal_envelope)
from .identity import Identity
from .infer import InferResult, infer
from .keyservice import KeyServiceClient
from .state_versions import KeyServiceForked, KeyServiceRollback

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists", "AttestationError", "Claims", "ClientConfig", "DataLoss",
    "DeadlineExceeded", "EnvelopeHeader", "FailedPrecondition", "Identity", "InferResult",
    "Internal", "InvalidArgument", "KeyServiceClient", "KeyServiceForked", "KeyServiceRollback",
    "MossError", "NotFound", "OutOfRange",
    "PermissionDenied", "Policy", "ResourceExhausted", "Unauthenticated", "Unavailable",
    "Unimplemented", "decrypt_model", "decrypt_model_file", "encrypt_model",
    "encrypt_model_file", "infer", "load_key", "open_envelope", "save_key", "seal_envelope",
    "simulated_measurement", "verify_attested_certificate", "verify_dcap_quote",
    "verify_evidence", "verify_simulated_evidence",
]
