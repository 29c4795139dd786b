//! `#[derive(RingMessage)]` for ringkernel-web: one `#[repr(C)]` struct is both the Rust type
//! and the WGSL message type, and the compiler checks that their bytes agree.
//!
//! The derive writes the `WgslType` and `RingMessage` impls (the layout is built from the field
//! types, in field order) and a `const` block that walks the fields by WGSL's layout rules and
//! asserts that every field sits at the offset WGSL gives it and that the struct has WGSL's
//! size. A struct that would not survive a copy into a GPU ring therefore fails to compile,
//! with a message that names the field.

use proc_macro::TokenStream;
use proc_macro2::{TokenStream as TokenStream2, TokenTree};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Error, Field, Fields, Ident, LitStr};

/// Makes a `#[repr(C)]` struct with named fields a ring message: implements
/// `ringkernel_web::message::WgslType` and `ringkernel_web::message::RingMessage`, whose
/// `layout()` is the WGSL struct of the same name with the same fields in the same order.
///
/// Every field's type must be a WGSL type (`i32`, `u32`, `f32`, `Vec2`/`Vec3`/`Vec4` of those,
/// arrays `[T; N]` of WGSL types, or another derived struct), and the struct must also derive
/// `bytemuck::Pod` and `Zeroable`. Rust aligns every one of those to 4 bytes where WGSL aligns a
/// vec2 to 8 and a vec3 or vec4 to 16, so the compiler refuses a field that Rust places
/// elsewhere than WGSL; fill the gap with a field marked `#[ring(padding)]`, which keeps its
/// bytes in the Rust struct but leaves it out of the WGSL layout:
///
/// ```text
/// #[repr(C)]
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
/// struct Particle {
///     id: u32,
///     #[ring(padding)]
///     _pad: [u32; 3],
///     position: Vec3<f32>, // WGSL puts it at 16
///     mass: f32,           // and this in the vec3's tail, at 28
/// }
/// ```
///
/// Names are checked at compile time too (WGSL identifiers, not a reserved struct name, no
/// WGSL keyword or reserved word as a field name). Left to
/// run time, since `MessageLayout::new` sees the nested layouts: two different nested types that
/// share a struct name, or nesting deeper than WGSL allows. `try_layout()` (built once) says so,
/// `KernelHandle::typed` returns it as a `MessageFormat` error, and `layout()` panics with it.
#[proc_macro_derive(RingMessage, attributes(ring))]
pub fn derive_ring_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(Error::into_compile_error).into()
}

/// A field that is part of the WGSL struct (padding fields are not).
struct WgslField<'a> {
    field: &'a Field,
    ident: &'a Ident,
    /// The WGSL name: the Rust name without `r#`.
    name: String,
}

fn expand(input: &DeriveInput) -> Result<TokenStream2, Error> {
    let ident = &input.ident;
    let fields = named_fields(input)?;
    require_repr_c(input)?;
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "#[derive(RingMessage)] does not take generic structs: a WGSL struct has one fixed layout and \
             one name; write a concrete struct for each message type",
        ));
    }
    let name = ident.unraw().to_string();
    check_wgsl_name(ident, &name, "struct")?;

    let mut wgsl = Vec::new();
    for field in fields {
        if is_padding(field)? {
            continue;
        }
        let field_ident = field.ident.as_ref().expect("named fields have names");
        let field_name = field_ident.unraw().to_string();
        check_wgsl_name(field_ident, &field_name, "field")?;
        wgsl.push(WgslField { field, ident: field_ident, name: field_name });
    }
    if wgsl.is_empty() {
        return Err(Error::new_spanned(
            ident,
            "#[derive(RingMessage)] needs at least one field that is not #[ring(padding)]: WGSL structs cannot be empty",
        ));
    }

    let ring = quote!(::ringkernel_web::message);
    let private = quote!(::ringkernel_web::message::typed::__private);
    let wgsl_type = |f: &WgslField| {
        let ty = &f.field.ty;
        quote_spanned!(ty.span()=> <#ty as #ring::WgslType>)
    };

    let aligns = wgsl.iter().map(|f| {
        let ty = wgsl_type(f);
        quote!(let align = #private::max(align, #ty::ALIGN);)
    });
    let ends = wgsl.iter().map(|f| {
        let ty = wgsl_type(f);
        quote!(let end = #private::field_end(end, #ty::ALIGN, #ty::SIZE);)
    });
    let layout_fields = wgsl.iter().map(|f| {
        let ty = wgsl_type(f);
        let name = LitStr::new(&f.name, f.ident.span());
        quote!((#name, #ty::try_field_type()?))
    });
    let offset_checks = wgsl.iter().map(|f| {
        let ty = wgsl_type(f);
        let field_ident = f.ident;
        let early = format!(
            "ringkernel: field `{}` of `{name}` is not where WGSL puts it: Rust places it before WGSL's offset, \
             because WGSL aligns vec2 to 8 bytes and vec3, vec4 (and structs and arrays holding them) to 16; add a \
             `#[ring(padding)]` field before it to fill the gap, e.g. `_pad: [u32; N]`",
            f.name
        );
        let late = format!(
            "ringkernel: field `{}` of `{name}` is not where WGSL puts it: Rust places it after WGSL's offset; \
             remove padding before it",
            f.name
        );
        quote_spanned! {f.field.span()=>
            let offset = #private::round_up(end, #ty::ALIGN) as usize;
            let rust = ::core::mem::offset_of!(#ident, #field_ident);
            if rust < offset {
                ::core::panic!(#early);
            }
            if rust > offset {
                ::core::panic!(#late);
            }
            let end = #private::field_end(end, #ty::ALIGN, #ty::SIZE);
        }
    });
    let field_word_checks = wgsl.iter().map(|f| {
        let word = format!(
            "ringkernel: field `{}` of `{name}` is a WGSL keyword or reserved word, which no WGSL struct member may \
             be; rename the field",
            f.name
        );
        let field_lit = LitStr::new(&f.name, f.ident.span());
        quote_spanned! {f.ident.span()=>
            if #private::is_reserved_word(#field_lit) {
                ::core::panic!(#word);
            }
        }
    });
    let reserved = format!(
        "ringkernel: `{name}` cannot name a WGSL message: the name is reserved by WGSL or the ring harness \
         (`RingInput`, `RingOutput`, WGSL's type names, anything starting with `ring_`); rename the struct"
    );
    let smaller = format!(
        "ringkernel: `{name}` is smaller in Rust than in WGSL: WGSL rounds a struct's size up to its largest \
         field alignment (16 with a vec3 or vec4, 8 with a vec2); add a `#[ring(padding)]` field at the end"
    );
    let larger = format!(
        "ringkernel: `{name}` is larger in Rust than in WGSL: remove padding at the end (or a `#[repr(align)]` \
         larger than WGSL's alignment)"
    );
    let invalid = format!("ringkernel: #[derive(RingMessage)] on `{name}` made no valid WGSL struct: {{}}");
    let name_lit = LitStr::new(&name, ident.span());
    // Spanned at the struct's name, so a failed check points there (field checks at the field).
    let checks = quote_spanned! {ident.span()=>
        const _: () = {
            if #private::is_reserved_name(#name_lit) {
                ::core::panic!(#reserved);
            }
            #(#field_word_checks)*
            let end = 0;
            #(#offset_checks)*
            let _ = end;
            let rust = ::core::mem::size_of::<#ident>();
            let wgsl = <#ident as #ring::WgslType>::SIZE as usize;
            if rust < wgsl {
                ::core::panic!(#smaller);
            }
            if rust > wgsl {
                ::core::panic!(#larger);
            }
        };
    };

    Ok(quote! {
        const _: () = {
            // SAFETY: the `const` block below fails the build unless every field's Rust offset and
            // the struct's Rust size are WGSL's (padding fields only fill gaps: `Pod` forbids
            // implicit padding).
            unsafe impl #ring::WgslType for #ident {
                const ALIGN: u32 = {
                    let align = 4;
                    #(#aligns)*
                    align
                };
                const SIZE: u32 = {
                    let end = 0;
                    #(#ends)*
                    #private::round_up(end, <Self as #ring::WgslType>::ALIGN)
                };
                fn field_type() -> #ring::FieldType {
                    #ring::FieldType::message(&<Self as #ring::RingMessage>::layout())
                }

                fn try_field_type() -> ::core::result::Result<#ring::FieldType, ::std::string::String> {
                    <Self as #ring::RingMessage>::try_layout().map(|layout| #ring::FieldType::message(&layout))
                }
            }

            impl #ring::RingMessage for #ident {
                fn layout() -> #ring::MessageLayout {
                    <Self as #ring::RingMessage>::try_layout().unwrap_or_else(|e| ::core::panic!("{}", e))
                }

                fn try_layout() -> ::core::result::Result<#ring::MessageLayout, ::std::string::String> {
                    static LAYOUT: ::std::sync::OnceLock<::core::result::Result<#ring::MessageLayout, ::std::string::String>> =
                        ::std::sync::OnceLock::new();
                    #private::layout_once(&LAYOUT, || {
                        // A nested type's own error as it is: it names its type.
                        let fields = [#(#layout_fields),*];
                        #ring::MessageLayout::new(#name_lit, &fields).map_err(|e| ::std::format!(#invalid, e))
                    })
                }
            }

            #checks
        };
    })
}

fn named_fields(input: &DeriveInput) -> Result<impl Iterator<Item = &Field>, Error> {
    let data = match &input.data {
        Data::Struct(data) => data,
        Data::Enum(data) => {
            return Err(Error::new(
                data.enum_token.span,
                "#[derive(RingMessage)] needs a struct with named fields: a WGSL message is a struct, not an enum",
            ))
        }
        Data::Union(data) => {
            return Err(Error::new(
                data.union_token.span,
                "#[derive(RingMessage)] needs a struct with named fields: a WGSL message is a struct, not a union",
            ))
        }
    };
    match &data.fields {
        Fields::Named(named) => Ok(named.named.iter()),
        Fields::Unnamed(unnamed) => Err(Error::new_spanned(
            unnamed,
            "#[derive(RingMessage)] needs named fields: WGSL struct members have names, and they become the \
             message's field names; write `struct Name { field: Type, .. }`",
        )),
        Fields::Unit => Err(Error::new_spanned(
            &input.ident,
            "#[derive(RingMessage)] needs at least one named field: WGSL structs cannot be empty",
        )),
    }
}

/// Without `#[repr(C)]` Rust may reorder fields, and the offsets would be checked against a
/// layout the compiler is free to change.
fn require_repr_c(input: &DeriveInput) -> Result<(), Error> {
    let has_c = input.attrs.iter().filter(|attr| attr.path().is_ident("repr")).any(|attr| {
        attr.meta
            .require_list()
            .map(|list| list.tokens.clone().into_iter().any(|t| matches!(t, TokenTree::Ident(i) if i == "C")))
            .unwrap_or(false)
    });
    if has_c {
        return Ok(());
    }
    Err(Error::new_spanned(
        &input.ident,
        format!(
            "#[derive(RingMessage)] needs #[repr(C)] on `{}`: without it Rust may reorder the fields, so its bytes \
             would not be the WGSL struct's",
            input.ident
        ),
    ))
}

/// Whether the field is marked `#[ring(padding)]`; refuses any other `ring` attribute.
fn is_padding(field: &Field) -> Result<bool, Error> {
    let mut padding = false;
    for attr in field.attrs.iter().filter(|attr| attr.path().is_ident("ring")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("padding") {
                padding = true;
                Ok(())
            } else {
                Err(meta.error("unknown #[ring] option; the only one is #[ring(padding)]"))
            }
        })?;
    }
    Ok(padding)
}

/// WGSL identifiers are ASCII and may not start with `__`; Rust allows both. (Reserved names are
/// checked in the generated code, against the runtime's own list.)
fn check_wgsl_name(ident: &Ident, name: &str, what: &str) -> Result<(), Error> {
    if name.is_ascii() && !name.starts_with("__") {
        return Ok(());
    }
    Err(Error::new(
        ident.span(),
        format!("`{name}` cannot name a WGSL {what}: WGSL identifiers are ASCII and do not start with `__`"),
    ))
}
