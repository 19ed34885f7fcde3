using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Coinop.Ecash.Crypto;

/// <summary>
/// k·P in constant time: libsecp256k1's <c>secp256k1_ecdh</c> (its <c>ecmult_const</c>, the only constant-time
/// multiplication by an arbitrary point it exports), called directly on the library Secp256k1.Net ships, with a hash
/// callback that hands back the product's affine x and y instead of hashing them. Calling it directly rather than
/// through Secp256k1.Net's delegate saves its marshalling, under a microsecond per multiplication (docs/benchmarks.md).
/// </summary>
internal static unsafe partial class NativeEcdh
{
    private const string Library = "secp256k1";

    // SECP256K1_CONTEXT_NONE. The context is only ever read (ECDH takes it const), so one serves every thread; it lives
    // as long as the process.
    private static readonly nint Context = ContextCreate(1);

    /// <summary>
    /// Writes k·P as x || y (32 bytes each, big-endian) to <paramref name="product"/>; false when k is zero or not
    /// below n. <paramref name="native"/> must be a public key object libsecp256k1 made (a parsed point, a product): an
    /// all-zero object trips its argument check, whose default handler on this context aborts the process.
    /// </summary>
    public static bool Multiply(ReadOnlySpan<byte> native, ReadOnlySpan<byte> k, Span<byte> product)
    {
        if (native.Length != 64 || k.Length != 32 || product.Length < 64)
        {
            throw new ArgumentException("a public key object is 64 bytes, a scalar 32, the product 64");
        }

        fixed (byte* n = native, s = k, p = product)
        {
            return Ecdh(Context, p, n, s, &KeepPoint, null) == 1;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int KeepPoint(byte* output, byte* x, byte* y, void* data)
    {
        new ReadOnlySpan<byte>(x, 32).CopyTo(new Span<byte>(output, 32));
        new ReadOnlySpan<byte>(y, 32).CopyTo(new Span<byte>(output + 32, 32));
        return 1;
    }

    [LibraryImport(Library, EntryPoint = "secp256k1_context_create")]
    private static partial nint ContextCreate(uint flags);

    [LibraryImport(Library, EntryPoint = "secp256k1_ecdh")]
    private static partial int Ecdh(nint context, byte* output, byte* pubkey, byte* scalar, delegate* unmanaged[Cdecl]<byte*, byte*, byte*, void*, int> hash, void* data);
}
