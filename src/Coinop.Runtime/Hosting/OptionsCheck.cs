using System.ComponentModel.DataAnnotations;

namespace Coinop.Runtime.Hosting;

/// <summary>
/// Validates an options object the way its host will (data annotations and <see cref="IValidatableObject"/>), so a
/// command can report a bad flag in one line before building anything.
/// </summary>
public static class OptionsCheck
{
    /// <exception cref="ValidationException">With every problem found, joined in one message.</exception>
    public static void ThrowIfInvalid(object options)
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
        {
            throw new ValidationException(string.Join("; ", results.Select(r => r.ErrorMessage ?? "invalid")));
        }
    }
}
