//! The OpenAPI document, generated from the handler table — the same table the routes come
//! from, so a route cannot exist without its operation in the spec.
//!
//! `openapi/openapi.json` is this document, committed; regenerate it with
//! `cargo run -p ferromega-daemon -- openapi > openapi/openapi.json`; a test fails when stale.

use ferromega_api::{
    Args, Batch, CommandReply, CommandRequest, ErrorBody, HostError, Response, SuggestReply,
};
use ferromega_command::handlers::operations;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ComponentsBuilder};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, Required,
};
use utoipa::PartialSchema;

use ferromega_command::routes::{route_of, Verb};

fn json_ref(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(name)))
        .build()
}

fn error_response(desc: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(desc)
        .content("application/json", json_ref("ErrorBody"))
        .build()
}

fn ns_param() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("ns")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("namespace (minimega is the default one)"))
        .schema(Some(String::schema()))
        .build()
}

fn query_param(name: &str, desc: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(desc))
        .schema(Some(String::schema()))
        .build()
}

/// The OpenAPI document of every endpoint.
pub fn openapi() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let responses = ContentBuilder::new()
        .schema(Some(
            ArrayBuilder::new()
                .items(Ref::from_schema_name("Response"))
                .build(),
        ))
        .build();
    for (_, spec) in operations() {
        let route = route_of(spec);
        let usage = spec.patterns.join("\n");
        let mut op = OperationBuilder::new()
            .operation_id(Some(spec.name.clone()))
            .summary(Some(spec.help_short.clone()))
            .description(Some(format!(
                "{}\n\nPatterns:\n\n```\n{usage}\n```",
                spec.help_long
            )))
            .tag(
                spec.name
                    .split('_')
                    .find(|w| *w != "clear")
                    .unwrap_or("misc"),
            )
            .request_body(Some(
                RequestBodyBuilder::new()
                    .description(Some("the pattern's arguments by key (may be empty)"))
                    .content("application/json", json_ref("Args"))
                    .build(),
            ))
            .parameter(query_param(
                "columns",
                "keep these columns (.columns syntax)",
            ))
            .parameter(query_param("filter", "keep matching rows (.filter syntax)"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("per-host responses; with Accept: text/plain the rendered table")
                    .content("application/json", responses.clone())
                    .build(),
            )
            .response("400", error_response("bad input"))
            .response("404", error_response("not found"))
            .response("409", error_response("conflicts with the current state"))
            .response("500", error_response("a host program or resource failed"));
        if !route.global {
            op = op.parameter(ns_param());
        }
        let method = if route.verb == Verb::Delete {
            HttpMethod::Delete
        } else {
            HttpMethod::Post
        };
        paths = paths.path(route.path, PathItem::new(method, op));
    }
    let command = OperationBuilder::new()
        .operation_id(Some("command"))
        .summary(Some("run a command line"))
        .description(Some(
            "Run one line of the minimega command language in the namespace.",
        ))
        .tag("command")
        .parameter(ns_param())
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_ref("CommandRequest"))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("the batches of output and the active namespace")
                .content("application/json", json_ref("CommandReply"))
                .build(),
        )
        .response("400", error_response("the body is not a command request"));
    paths = paths.path(
        "/api/v1/namespaces/{ns}/command",
        PathItem::new(HttpMethod::Post, command),
    );
    let suggest = OperationBuilder::new()
        .operation_id(Some("suggest"))
        .summary(Some("complete a partial command line"))
        .tag("command")
        .parameter(
            ParameterBuilder::new()
                .name("line")
                .parameter_in(ParameterIn::Query)
                .required(Required::True)
                .schema(Some(String::schema()))
                .build(),
        )
        .response(
            "200",
            ResponseBuilder::new()
                .description("whole candidate lines")
                .content("application/json", json_ref("SuggestReply"))
                .build(),
        );
    paths = paths.path("/api/v1/suggest", PathItem::new(HttpMethod::Get, suggest));
    paths = crate::live::spec::paths(paths);
    paths = crate::files::paths(paths);
    let components = crate::live::spec::schemas(ComponentsBuilder::new())
        .schema_from::<Args>()
        .schema_from::<Response>()
        .schema_from::<Batch>()
        .schema_from::<CommandRequest>()
        .schema_from::<CommandReply>()
        .schema_from::<SuggestReply>()
        .schema_from::<ErrorBody>()
        .schema_from::<HostError>()
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("ferromega")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "minimega 2.4 as an HTTP API: every command is an endpoint of the same name.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// The document as JSON (what `/openapi.json` serves and the committed file holds).
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(openapi()).unwrap_or(serde_json::Value::Null)
}
