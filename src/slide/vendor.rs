//! Vendor metadata: the Aperio ImageDescription (key = value pairs, as OpenSlide's
//! `openslide-vendor-aperio.c` reads them) and OME-XML (the OME-TIFF specification and the OME
//! data model's `Pixels`, `Objective` and `TiffData` elements).

use std::collections::BTreeMap;

/// OME-XML that does not parse as XML. Displayed as `OME-XML: <the parser's message>` (printable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("OME-XML: {0}")]
pub struct OmeXmlError(pub String);

fn parse_ome(xml: &str) -> Result<roxmltree::Document<'_>, OmeXmlError> {
    roxmltree::Document::parse(xml).map_err(|e| OmeXmlError(crate::error::printable(&e.to_string())))
}

/// Parse an Aperio description: a header line, then `|`-separated `key = value` pairs.
/// Returns the pairs in file order (keys as written: "MPP", "AppMag", …).
pub fn parse_aperio_description(description: &str) -> Vec<(String, String)> {
    description
        .split('|')
        .skip(1)
        .filter_map(|part| {
            let (key, value) = part.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// An Aperio description with the values of `keys` (compared without case) made empty, the keys
/// and every other byte kept: `|User = jsmith|` becomes `|User = |`. `None` when nothing changes.
pub fn blank_aperio_values(description: &str, keys: &[&str]) -> Option<String> {
    let mut parts: Vec<String> = description.split('|').map(str::to_string).collect();
    let mut changed = false;
    // The header before the first `|` holds no pairs (as parse_aperio_description reads it).
    for part in parts.iter_mut().skip(1) {
        let Some((key, value)) = part.split_once('=') else { continue };
        if value.trim().is_empty() || !keys.iter().any(|k| k.eq_ignore_ascii_case(key.trim())) {
            continue;
        }
        *part = format!("{key}= ");
        changed = true;
    }
    changed.then(|| parts.join("|"))
}

/// Facts read from OME-XML.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OmeFacts {
    /// µm per pixel across: `PhysicalSizeX` converted from its unit; `None` when absent,
    /// not positive or in an unknown unit.
    pub mpp_x: Option<f64>,
    /// µm per pixel down, from `PhysicalSizeY` likewise.
    pub mpp_y: Option<f64>,
    /// The objective's `NominalMagnification`, when positive.
    pub objective_power: Option<f64>,
    /// `ome.*` properties as written, and `wsiview.warning.ome.*` for values not used.
    pub values: BTreeMap<String, String>,
}

fn micrometres_per_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "µm" | "um" | "\u{3bc}m" | "micron" | "microns" => 1.0,
        "nm" => 1e-3,
        "mm" => 1e3,
        "cm" => 1e4,
        "m" => 1e6,
        "Å" | "\u{212b}" => 1e-4,
        _ => return None,
    })
}

/// Read physical pixel size and objective magnification from OME-XML. `Err` says why the XML is
/// unreadable; callers treat that as "no physical size", not as a failure to open the slide.
pub fn parse_ome_xml(xml: &str) -> Result<OmeFacts, OmeXmlError> {
    let doc = parse_ome(xml)?;
    let mut facts = match doc.descendants().find(|n| n.tag_name().name() == "Pixels") {
        Some(pixels) => pixel_facts(pixels),
        None => OmeFacts::default(),
    };
    if let Some(objective) = doc.descendants().find(|n| n.tag_name().name() == "Objective") {
        if let Some(mag) = objective.attribute("NominalMagnification") {
            objective_facts(mag, &mut facts);
        }
    }
    Ok(facts)
}

/// Pixel size of one `Pixels` element, in µm, from `PhysicalSizeX/Y` with their units.
fn pixel_facts(pixels: roxmltree::Node) -> OmeFacts {
    let mut facts = OmeFacts::default();
    for (axis, slot) in [("X", &mut facts.mpp_x), ("Y", &mut facts.mpp_y)] {
        let size = pixels.attribute(format!("PhysicalSize{axis}").as_str());
        let unit = pixels.attribute(format!("PhysicalSize{axis}Unit").as_str()).unwrap_or("µm");
        if let Some(size) = size {
            facts.values.insert(format!("ome.PhysicalSize{axis}"), size.to_string());
            facts.values.insert(format!("ome.PhysicalSize{axis}Unit"), unit.to_string());
            let value = super::number::positive_or_warn(size, &format!("ome.PhysicalSize{axis}"), &mut facts.values);
            if value.is_some() && micrometres_per_unit(unit).is_none() {
                facts.values.insert(
                    format!("wsiview.warning.ome.PhysicalSize{axis}Unit"),
                    format!("not used: unknown unit \"{}\"", crate::error::printable(unit)),
                );
            }
            *slot = value.zip(micrometres_per_unit(unit)).map(|(v, k)| v * k);
        }
    }
    facts
}

fn objective_facts(mag: &str, facts: &mut OmeFacts) {
    facts.values.insert("ome.NominalMagnification".into(), mag.to_string());
    facts.objective_power = super::number::positive_or_warn(mag, "ome.NominalMagnification", &mut facts.values);
}

/// One `Image` of an OME-XML document, with where its pixels are in the TIFF.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OmeImage {
    /// Its `Name` (may be empty).
    pub name: String,
    /// The main-chain IFD of its first plane: `TiffData IFD`, or, without it, the planes of the
    /// Images before it counted (one plane per `TiffData`, else one per Image).
    pub ifd: usize,
    /// `Pixels SizeX`: pixels across (0 when absent or unreadable).
    pub width: u64,
    /// `Pixels SizeY`: pixels down (0 when absent or unreadable).
    pub height: u64,
    /// Pixel size (µm) and objective power of this Image, with `ome.*` and warning properties.
    pub facts: OmeFacts,
}

/// Every `Image` of an OME-XML document in document order. `Err` says why the XML is unreadable.
/// Follows the OME-TIFF specification's `TiffData` rules for where an Image's planes are; a
/// missing attribute is a default there (IFD 0 of the running count, one plane).
pub fn parse_ome_images(xml: &str) -> Result<Vec<OmeImage>, OmeXmlError> {
    let doc = parse_ome(xml)?;
    let objectives: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.tag_name().name() == "Objective").collect();
    let mut images = Vec::new();
    let mut next_ifd = 0usize;
    for image in doc.descendants().filter(|n| n.tag_name().name() == "Image") {
        let Some(pixels) = image.children().find(|n| n.tag_name().name() == "Pixels") else { continue };
        let size = |attr: &str| pixels.attribute(attr).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        let tiff_data: Vec<roxmltree::Node> = pixels.children().filter(|n| n.tag_name().name() == "TiffData").collect();
        let first_ifd = tiff_data.first().and_then(|t| t.attribute("IFD")).and_then(|v| v.trim().parse::<usize>().ok());
        let planes: usize = tiff_data
            .iter()
            .map(|t| t.attribute("PlaneCount").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1))
            .fold(0usize, usize::saturating_add)
            .max(1);
        let ifd = first_ifd.unwrap_or(next_ifd);
        next_ifd = ifd.saturating_add(planes);
        let mut facts = pixel_facts(pixels);
        // The objective this Image names, else the only one.
        let settings = image.children().find(|n| n.tag_name().name() == "ObjectiveSettings");
        let objective = match settings.and_then(|s| s.attribute("ID")) {
            Some(id) => objectives.iter().find(|o| o.attribute("ID") == Some(id)),
            None => objectives.first(),
        };
        if let Some(mag) = objective.and_then(|o| o.attribute("NominalMagnification")) {
            objective_facts(mag, &mut facts);
        }
        images.push(OmeImage {
            name: image.attribute("Name").unwrap_or_default().to_string(),
            ifd,
            width: size("SizeX"),
            height: size("SizeY"),
            facts,
        });
    }
    Ok(images)
}

/// The name an OME Image is listed under as an associated image: `macro`, `label` or
/// `thumbnail` when its name says so (any case, as in "Macro image"), else its own name, else
/// "image N".
pub fn ome_associated_name(image: &OmeImage, index: usize) -> String {
    let lower = image.name.to_lowercase();
    for word in ["macro", "label", "thumbnail"] {
        if lower.contains(word) {
            return word.to_string();
        }
    }
    let name = crate::error::printable(image.name.trim());
    if name.is_empty() {
        format!("image {index}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_keys_and_other_values() {
        let d = "Aperio Image Library v12\r\n100x80 [0,0 100x80] JPEG Q=70|AppMag = 20|Filename = H26-1234 A1|user=jsmith|MPP = 0.499|Date = 11/25/26|Time = 09:30:00|Title =";
        let blank = blank_aperio_values(d, &["Filename", "User", "Date", "Time", "Title"]).expect("changed");
        assert_eq!(
            blank,
            "Aperio Image Library v12\r\n100x80 [0,0 100x80] JPEG Q=70|AppMag = 20|Filename = |user= |MPP = 0.499|Date = |Time = |Title ="
        );
        let pairs = parse_aperio_description(&blank);
        assert!(pairs.contains(&("MPP".into(), "0.499".into())) && pairs.contains(&("Filename".into(), "".into())));
        assert_eq!(blank_aperio_values(&blank, &["Filename", "User"]), None, "already blank");
        assert_eq!(blank_aperio_values("Aperio\r\nlabel 387x463", &["Filename"]), None);
    }

    #[test]
    fn aperio_pairs() {
        let d = "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30|AppMag = 20|StripeWidth = 2040|MPP = 0.4990|Filename = CMU-1";
        let pairs = parse_aperio_description(d);
        assert_eq!(pairs[0], ("AppMag".to_string(), "20".to_string()));
        assert!(pairs.contains(&("MPP".to_string(), "0.4990".to_string())));
        assert_eq!(pairs.len(), 4);
    }

    #[test]
    fn ome_units() {
        let xml = r#"<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">
          <Instrument ID="I:0"><Objective ID="O:0" NominalMagnification="40"/></Instrument>
          <Image ID="Image:0"><Pixels ID="P:0" SizeX="10" SizeY="10" PhysicalSizeX="250" PhysicalSizeXUnit="nm"
            PhysicalSizeY="0.26" DimensionOrder="XYCZT" Type="uint8"/></Image></OME>"#;
        let f = parse_ome_xml(xml).expect("parses");
        assert!((f.mpp_x.unwrap_or(0.0) - 0.25).abs() < 1e-12);
        assert!((f.mpp_y.unwrap_or(0.0) - 0.26).abs() < 1e-12);
        assert_eq!(f.objective_power, Some(40.0));
        assert!(parse_ome_xml("<OME><Pixels").is_err());
    }

    #[test]
    fn ome_numbers_with_decimal_commas_and_unreadable_ones() {
        let xml = r#"<OME><Instrument><Objective ID="O:0" NominalMagnification="20,0"/></Instrument>
          <Image ID="Image:0"><Pixels ID="P:0" SizeX="10" SizeY="10" PhysicalSizeX="0,25" PhysicalSizeY="1.234,5"
            PhysicalSizeYUnit="µm"/></Image></OME>"#;
        let f = parse_ome_xml(xml).expect("parses");
        assert_eq!((f.mpp_x, f.objective_power), (Some(0.25), Some(20.0)));
        assert_eq!(f.mpp_y, None);
        assert!(f.values["wsiview.warning.ome.PhysicalSizeY"].contains("1.234,5"), "{:?}", f.values);
        let xml = r#"<OME><Image><Pixels PhysicalSizeX="0.5" PhysicalSizeXUnit="furlong"/></Image></OME>"#;
        let f = parse_ome_xml(xml).expect("parses");
        assert_eq!(f.mpp_x, None);
        assert!(f.values["wsiview.warning.ome.PhysicalSizeXUnit"].contains("furlong"));
    }
}
