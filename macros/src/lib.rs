//! `#[conex::main]`: conex's entry point. Re-exported by conex as
//! `conex::main`; see its documentation there.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs `async fn main` on a tokio runtime built after
/// `conex::multiprocessing::init()` (see `conex::main`).
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args, item) {
        Ok(t) => t,
        Err((span, msg)) => compile_error(span, &msg),
    }
}

type Error = (Span, String);

/// The attribute's options: `flavor = "multi_thread" | "current_thread"`,
/// `worker_threads = N`.
fn options(args: TokenStream) -> Result<(bool, Option<usize>), Error> {
    let mut multi = true;
    let mut workers = None;
    let toks: Vec<TokenTree> = args.into_iter().collect();
    for opt in toks.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ',')) {
        match opt {
            [] => {}
            [
                TokenTree::Ident(k),
                TokenTree::Punct(eq),
                TokenTree::Literal(v),
            ] if eq.as_char() == '=' => {
                let v_str = v.to_string();
                match k.to_string().as_str() {
                    "flavor" => match v_str.trim_matches('"') {
                        "multi_thread" => multi = true,
                        "current_thread" => multi = false,
                        other => {
                            return Err((
                                v.span(),
                                format!(
                                    "unknown flavor {other:?}: \"multi_thread\" or \"current_thread\""
                                ),
                            ));
                        }
                    },
                    "worker_threads" => match v_str.parse::<usize>() {
                        Ok(n) if n > 0 => workers = Some(n),
                        _ => {
                            return Err((
                                v.span(),
                                "worker_threads must be a number above 0".into(),
                            ));
                        }
                    },
                    other => {
                        return Err((
                            k.span(),
                            format!("unknown option `{other}`: `flavor` or `worker_threads`"),
                        ));
                    }
                }
            }
            other => {
                let span = other.first().map_or_else(Span::call_site, TokenTree::span);
                return Err((
                    span,
                    "expected `flavor = \"...\"` or `worker_threads = N`".into(),
                ));
            }
        }
    }
    if !multi && workers.is_some() {
        return Err((
            Span::call_site(),
            "worker_threads is for the multi_thread flavor".into(),
        ));
    }
    Ok((multi, workers))
}

fn expand(args: TokenStream, item: TokenStream) -> Result<TokenStream, Error> {
    let (multi, workers) = options(args)?;
    let mut toks: Vec<TokenTree> = item.into_iter().collect();
    // `async` before `fn main`, dropped; the body is the last group.
    let is_ident = |t: &TokenTree, s: &str| matches!(t, TokenTree::Ident(i) if i.to_string() == s);
    let fn_at = toks.iter().position(|t| is_ident(t, "fn")).ok_or((
        Span::call_site(),
        "#[conex::main] goes on `async fn main`".to_string(),
    ))?;
    if !toks.get(fn_at + 1).is_some_and(|t| is_ident(t, "main")) {
        return Err((
            toks[fn_at].span(),
            "#[conex::main] goes on `fn main`".into(),
        ));
    }
    let async_at = toks[..fn_at]
        .iter()
        .position(|t| is_ident(t, "async"))
        .ok_or((
            toks[fn_at].span(),
            "the main function must be `async fn main`".to_string(),
        ))?;
    toks.remove(async_at);
    let body = match toks.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        _ => return Err((Span::call_site(), "`async fn main` needs a body".into())),
    };
    // fn main() -> R { ::conex::__main::runtime(multi, workers).block_on(async move BODY) }
    let mut call: Vec<TokenTree> = Vec::new();
    call.extend(path(&["conex", "__main", "init"]));
    call.push(TokenTree::Group(Group::new(
        Delimiter::Parenthesis,
        TokenStream::new(),
    )));
    call.push(TokenTree::Punct(Punct::new(';', Spacing::Alone)));
    call.extend(path(&["conex", "__main", "runtime"]));
    let workers_arg: TokenStream = match workers {
        Some(n) => [
            TokenTree::Ident(Ident::new("Some", Span::call_site())),
            TokenTree::Group(Group::new(
                Delimiter::Parenthesis,
                TokenTree::Literal(Literal::usize_unsuffixed(n)).into(),
            )),
        ]
        .into_iter()
        .collect(),
        None => TokenTree::Ident(Ident::new("None", Span::call_site())).into(),
    };
    let mut rt_args: Vec<TokenTree> = vec![
        TokenTree::Ident(Ident::new(
            if multi { "true" } else { "false" },
            Span::call_site(),
        )),
        TokenTree::Punct(Punct::new(',', Spacing::Alone)),
    ];
    rt_args.extend(workers_arg);
    call.push(TokenTree::Group(Group::new(
        Delimiter::Parenthesis,
        rt_args.into_iter().collect(),
    )));
    call.push(TokenTree::Punct(Punct::new('.', Spacing::Alone)));
    call.push(TokenTree::Ident(Ident::new("block_on", Span::call_site())));
    let fut: TokenStream = [
        TokenTree::Ident(Ident::new("async", Span::call_site())),
        TokenTree::Ident(Ident::new("move", Span::call_site())),
        TokenTree::Group(body.clone()),
    ]
    .into_iter()
    .collect();
    call.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, fut)));
    let mut new_body = Group::new(Delimiter::Brace, call.into_iter().collect());
    new_body.set_span(body.span());
    toks.push(TokenTree::Group(new_body));
    Ok(toks.into_iter().collect())
}

/// `::a::b::c`
fn path(segments: &[&str]) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for s in segments {
        out.push(TokenTree::Punct(Punct::new(':', Spacing::Joint)));
        out.push(TokenTree::Punct(Punct::new(':', Spacing::Alone)));
        out.push(TokenTree::Ident(Ident::new(s, Span::call_site())));
    }
    out
}

fn compile_error(span: Span, msg: &str) -> TokenStream {
    let mut lit = Literal::string(msg);
    lit.set_span(span);
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut name = Ident::new("compile_error", span);
    name.set_span(span);
    let mut g = Group::new(Delimiter::Parenthesis, TokenTree::Literal(lit).into());
    g.set_span(span);
    [
        TokenTree::Ident(name),
        TokenTree::Punct(bang),
        TokenTree::Group(g),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]
    .into_iter()
    .collect()
}
