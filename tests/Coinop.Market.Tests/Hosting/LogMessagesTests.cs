using System.Reflection;
using Coinop.Market.Hosting;
using Coinop.Provider.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Tests.Hosting;

/// <summary>The logging convention: every source-generated message has its own event id within its program.</summary>
public class LogMessagesTests
{
    [Theory]
    [InlineData(typeof(MarketHost))]
    [InlineData(typeof(ProviderMetrics))]
    public void Every_log_message_has_an_explicit_event_id_unique_in_its_assembly(Type anchor)
    {
        const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        var messages = anchor.Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(All))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(x => x.Attribute is not null)
            .Select(x => (Name: x.Method.DeclaringType!.Name + "." + x.Method.Name, x.Attribute!.EventId))
            .ToList();

        Assert.NotEmpty(messages);
        Assert.Empty(messages.Where(m => m.EventId == 0).Select(m => m.Name));
        var reused = messages.GroupBy(m => m.EventId).Where(g => g.Count() > 1).Select(g => g.Key + ": " + string.Join(", ", g.Select(m => m.Name)));
        Assert.Empty(reused);
    }
}
