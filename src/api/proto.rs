//! The generated `taskd.v1` messages and service traits.

pub use taskd_proto::FILE_DESCRIPTOR_SET;
pub use taskd_proto::v1::*;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use pbjson_types::FileDescriptorSet;
    use prost::Message;

    use super::FILE_DESCRIPTOR_SET;

    // Field numbers of descriptor.proto, which source-info paths are made of.
    const FILE_MESSAGE_TYPE: i32 = 4;
    const FILE_ENUM_TYPE: i32 = 5;
    const FILE_SERVICE: i32 = 6;
    const MESSAGE_FIELD: i32 = 2;
    const MESSAGE_NESTED_TYPE: i32 = 3;
    const MESSAGE_ENUM_TYPE: i32 = 4;
    const ENUM_VALUE: i32 = 2;
    const SERVICE_METHOD: i32 = 2;

    fn check_enum(
        name: &str,
        path: Vec<i32>,
        enumeration: &pbjson_types::EnumDescriptorProto,
        commented: &HashSet<Vec<i32>>,
        missing: &mut Vec<String>,
    ) {
        if !commented.contains(&path) {
            missing.push(name.to_string());
        }
        for (index, value) in enumeration.value.iter().enumerate() {
            let mut value_path = path.clone();
            value_path.extend([ENUM_VALUE, index as i32]);
            if !commented.contains(&value_path) {
                missing.push(format!("{name}.{}", value.name()));
            }
        }
    }

    fn check_message(
        name: &str,
        path: Vec<i32>,
        message: &pbjson_types::DescriptorProto,
        commented: &HashSet<Vec<i32>>,
        missing: &mut Vec<String>,
    ) {
        if !commented.contains(&path) {
            missing.push(name.to_string());
        }
        for (index, field) in message.field.iter().enumerate() {
            let mut field_path = path.clone();
            field_path.extend([MESSAGE_FIELD, index as i32]);
            if !commented.contains(&field_path) {
                missing.push(format!("{name}.{}", field.name()));
            }
        }
        for (index, nested) in message.nested_type.iter().enumerate() {
            if nested.options.as_ref().is_some_and(|options| options.map_entry()) {
                continue;
            }
            let mut nested_path = path.clone();
            nested_path.extend([MESSAGE_NESTED_TYPE, index as i32]);
            check_message(
                &format!("{name}.{}", nested.name()),
                nested_path,
                nested,
                commented,
                missing,
            );
        }
        for (index, enumeration) in message.enum_type.iter().enumerate() {
            let mut enum_path = path.clone();
            enum_path.extend([MESSAGE_ENUM_TYPE, index as i32]);
            check_enum(
                &format!("{name}.{}", enumeration.name()),
                enum_path,
                enumeration,
                commented,
                missing,
            );
        }
    }

    /// `grpcurl describe` shows what the schema says: so every message,
    /// field, enum, value, service and RPC of `taskd.v1` must say something.
    #[test]
    fn every_element_of_the_schema_has_a_comment() {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        let mut missing = Vec::new();
        let mut files = 0;
        for file in set.file.iter().filter(|file| file.package() == "taskd.v1") {
            files += 1;
            let commented: HashSet<Vec<i32>> = file
                .source_code_info
                .as_ref()
                .expect("descriptor set carries source info")
                .location
                .iter()
                .filter(|location| !location.leading_comments().trim().is_empty())
                .map(|location| location.path.clone())
                .collect();
            for (index, message) in file.message_type.iter().enumerate() {
                check_message(
                    message.name(),
                    vec![FILE_MESSAGE_TYPE, index as i32],
                    message,
                    &commented,
                    &mut missing,
                );
            }
            for (index, enumeration) in file.enum_type.iter().enumerate() {
                check_enum(
                    enumeration.name(),
                    vec![FILE_ENUM_TYPE, index as i32],
                    enumeration,
                    &commented,
                    &mut missing,
                );
            }
            for (index, service) in file.service.iter().enumerate() {
                let path = vec![FILE_SERVICE, index as i32];
                if !commented.contains(&path) {
                    missing.push(service.name().to_string());
                }
                for (method_index, method) in service.method.iter().enumerate() {
                    let mut method_path = path.clone();
                    method_path.extend([SERVICE_METHOD, method_index as i32]);
                    if !commented.contains(&method_path) {
                        missing.push(format!("{}.{}", service.name(), method.name()));
                    }
                }
            }
        }
        assert_eq!(files, 5);
        assert!(missing.is_empty(), "elements without a comment: {missing:?}");
    }
}
