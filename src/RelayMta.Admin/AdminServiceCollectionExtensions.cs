using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace RelayMta.Admin;

/// <summary>Adds the admin HTTP server (API, metrics, health, dashboard) to the relay's host.</summary>
public static class AdminServiceCollectionExtensions
{
    /// <summary>
    /// Registers the admin server; it listens on <c>relay-mta.admin.listen</c> when that is set.
    /// Call after <c>AddAkka</c> (as <c>RelayMtaHost.Create</c> does), so it starts after the actors
    /// and stops before them.
    /// </summary>
    public static IServiceCollection AddRelayMtaAdmin(this IServiceCollection services)
    {
        services.AddSingleton<AdminServer>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<AdminServer>());
        return services;
    }
}
