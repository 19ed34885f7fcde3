using QRCoder;

namespace Coinop.Cli.Shared;

/// <summary>A QR code drawn with half-block characters, for a phone wallet to scan an invoice off the terminal.</summary>
public static class TerminalQr
{
    /// <summary>
    /// Upper case, as BOLT 11 allows: a QR code in alphanumeric mode is smaller. Dark modules are drawn light so the
    /// code reads on the usual dark terminal, with its quiet zone.
    /// </summary>
    public static string Render(string text)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text.ToUpperInvariant(), QRCodeGenerator.ECCLevel.L);
        return new AsciiQRCode(data).GetGraphicSmall(drawQuietZones: true, invert: true, endOfLine: Environment.NewLine);
    }
}
