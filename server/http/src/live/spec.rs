//! The live endpoints in the OpenAPI document: `events` (the events WebSocket), `console`
//! (a console ticket), `console_ws` (the console WebSocket), `graphs` (figures over
//! time) and `pipe_read` (a named pipe as a stream). They are not command handlers: the
//! spec-sync test allows these five ids besides `command` and `suggest`.

use ferromega_api::events::{ConsoleTicket, Event, VmSummary};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::ComponentsBuilder;
use utoipa::openapi::{ContentBuilder, PathsBuilder, Ref, Required};
use utoipa::PartialSchema;

pub(crate) fn json_ref(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(name)))
        .build()
}

pub(crate) fn error(desc: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(desc)
        .content("application/json", json_ref("ErrorBody"))
        .build()
}

pub(crate) fn param(
    name: &str,
    at: ParameterIn,
    required: bool,
    desc: &str,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(desc))
        .schema(Some(String::schema()))
        .build()
}

/// Adds the live endpoints to `paths`.
pub fn paths(paths: PathsBuilder) -> PathsBuilder {
    let events = OperationBuilder::new()
        .operation_id(Some("events"))
        .summary(Some("watch VM launches, state changes and removals"))
        .description(Some(
            "Upgrades to a WebSocket. The server sends JSON text frames, each an `Event`: \
             first a `snapshot` of every VM of every namespace, then `vm` (launched or \
             changed) and `vm_removed` events as they happen. A reader that falls too far \
             behind is closed with code 4000 (`lagged`) and should reconnect. A browser's \
             Origin must be this server.",
        ))
        .tag("events")
        .response(
            "101",
            ResponseBuilder::new()
                .description("switching to the WebSocket; its messages are Events")
                .content("application/json", json_ref("Event"))
                .build(),
        )
        .response("403", error("the Origin is another site"));
    let ticket = OperationBuilder::new()
        .operation_id(Some("console"))
        .summary(Some("a ticket to open a VM's console"))
        .description(Some(
            "A single-use ticket, valid for 30 seconds, bound to this VM (namespace and \
             ID): open `url` as a WebSocket with it. KVM VMs have a VNC console (raw RFB \
             in binary frames), containers a terminal (the bytes of their pty).",
        ))
        .tag("console")
        .parameter(param(
            "ns",
            ParameterIn::Path,
            true,
            "namespace (minimega is the default one)",
        ))
        .parameter(param("name", ParameterIn::Path, true, "VM name or ID"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("the ticket")
                .content("application/json", json_ref("ConsoleTicket"))
                .build(),
        )
        .response("404", error("no such VM"))
        .response("409", error("the VM is not running or has no console"))
        .response("503", error("too many tickets outstanding"));
    let ws = OperationBuilder::new()
        .operation_id(Some("console_ws"))
        .summary(Some("open a VM's console"))
        .description(Some(
            "Upgrades to a WebSocket relaying the console of the ticket's VM: binary \
             frames both ways (raw RFB for VNC, pty bytes for terminals; text frames from \
             the viewer are taken as bytes). Several viewers may watch one VM. The server \
             pings every 20 seconds. A browser's Origin must be this server.",
        ))
        .tag("console")
        .parameter(param(
            "ticket",
            ParameterIn::Query,
            true,
            "a ticket from the console endpoint",
        ))
        .parameter(param(
            "ns",
            ParameterIn::Query,
            false,
            "with vm: the namespace the ticket must be for (default minimega)",
        ))
        .parameter(param(
            "vm",
            ParameterIn::Query,
            false,
            "the VM (name or ID) the ticket must be for",
        ))
        .response(
            "101",
            ResponseBuilder::new()
                .description("switching to the console WebSocket")
                .build(),
        )
        .response(
            "403",
            error("a bad Origin, or a ticket unknown, used, expired or for another VM"),
        )
        .response("404", error("the VM is gone"))
        .response("409", error("the VM is no longer running"))
        .response("502", error("the VM's console socket cannot be reached"));
    let graphs = OperationBuilder::new()
        .operation_id(Some("graphs"))
        .summary(Some("a VM's or the host's figures over time"))
        .description(Some(
            "CPU (percent), memory (MB), receive and transmit (MB/s) over time, sampled \
             once a second by the server: the last 10 minutes one point a second \
             (`range=10m`), or the last 24 hours one point a minute, each the average of \
             its minute (`range=24h`). The answer is an object `{host, namespace, vm, \
             range, step, series: {time, cpu, mem, rx, tx}}`, each series an array with \
             one value per time (Unix seconds). Without `vm`, the host's figures (CPU is \
             the percent of all its CPUs busy). A VM on another host of the mesh, or \
             `host=<peer>`, is answered by that host over the peer link.",
        ))
        .tag("graphs")
        .parameter(param(
            "ns",
            ParameterIn::Path,
            true,
            "namespace (minimega is the default one)",
        ))
        .parameter(param(
            "vm",
            ParameterIn::Query,
            false,
            "the VM's name; the host's figures when absent",
        ))
        .parameter(param(
            "range",
            ParameterIn::Query,
            false,
            "10m (default) or 24h",
        ))
        .parameter(param(
            "host",
            ParameterIn::Query,
            false,
            "the mesh host whose figures (or VM) to show; this host when absent",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("the series")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(utoipa::openapi::schema::Object::new()))
                        .build(),
                )
                .build(),
        )
        .response("400", error("a bad range, or no such VM"))
        .response("404", error("no such mesh host"))
        .response("500", error("the mesh host holding the VM did not answer"));
    let pipe = OperationBuilder::new()
        .operation_id(Some("pipe_read"))
        .summary(Some("read a named pipe as a stream of lines"))
        .description(Some(
            "Registers a reader of the pipe (creating the pipe when new) and streams its \
             messages as text/plain, one per line, for as long as the client reads. \
             Write with the `pipe` operation. `ferromega pipe NAME` does both.",
        ))
        .tag("pipes")
        .parameter(param(
            "ns",
            ParameterIn::Path,
            true,
            "namespace (minimega is the default one)",
        ))
        .parameter(param("name", ParameterIn::Path, true, "the pipe"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("the pipe's messages, a line each")
                .content(
                    "text/plain",
                    ContentBuilder::new().schema(Some(String::schema())).build(),
                )
                .build(),
        )
        .response("400", error("a bad pipe name"))
        .response("404", error("no such namespace"));
    paths
        .path("/api/v1/events", PathItem::new(HttpMethod::Get, events))
        .path(
            "/api/v1/namespaces/{ns}/graphs",
            PathItem::new(HttpMethod::Get, graphs),
        )
        .path(
            "/api/v1/namespaces/{ns}/vms/{name}/console",
            PathItem::new(HttpMethod::Post, ticket),
        )
        .path("/api/v1/console/ws", PathItem::new(HttpMethod::Get, ws))
        .path(
            "/api/v1/namespaces/{ns}/pipes/{name}",
            PathItem::new(HttpMethod::Get, pipe),
        )
}

/// Adds the live endpoints' schemas to `components`.
pub fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<Event>()
        .schema_from::<VmSummary>()
        .schema_from::<ConsoleTicket>()
}
