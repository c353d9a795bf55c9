"""C++ code generation from .proto files with the system protoc and gRPC plugin.

Bazel's own proto rules would download protobuf; Debian's protoc and
grpc_cpp_plugin do the same job offline. Well-known types come from
/usr/include and from Debian's libprotobuf.
"""

def cc_grpc_proto_library(name, src, deps = [], visibility = None):
    """Generates and compiles the messages and gRPC stubs of one .proto file.

    Args:
      name: the cc_library's name.
      src: the .proto file, relative to this package.
      deps: cc_grpc_proto_library targets of imported project protos.
      visibility: the library's visibility.
    """
    base = src[:-len(".proto")]
    pkg = native.package_name()
    outs = [base + ext for ext in [".pb.h", ".pb.cc", ".grpc.pb.h", ".grpc.pb.cc"]]
    native.genrule(
        name = name + "_codegen",
        srcs = [src],
        outs = outs,
        cmd = " ".join([
            "protoc",
            # Paths relative to this package, so that the file is known to
            # reflection and to other languages' clients as e.g.
            # "taskwire/v1/tasks.proto".
            "--proto_path=" + pkg,
            "--proto_path=/usr/include",
            "--cpp_out=$(GENDIR)/" + pkg,
            "--grpc_out=$(GENDIR)/" + pkg,
            "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)",
            src,
        ]),
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc", base + ".grpc.pb.cc"],
        hdrs = [base + ".pb.h", base + ".grpc.pb.h"],
        strip_include_prefix = "/" + pkg,
        deps = deps + ["//third_party/system:grpc"],
        visibility = visibility,
    )
