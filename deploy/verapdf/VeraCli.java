// Drives the veraPDF validation library as veraPDF's own command line does (same processor,
// same report handlers, same exit codes), for the suite's PDF/A checks. The library comes from
// a package registry at test time (see deploy/test.sh); this file is the only code of ours.
//
//   java -cp <classpath> VeraCli [--flavour 2b] [--format json|mrr|text] [-v] FILE...
//
// Exit status: 0 every file compliant, 1 some file not compliant, 4 no file given, 7 a file
// could not be parsed, 8 a file is encrypted, 9 veraPDF failed.
import java.io.File;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import org.verapdf.features.FeatureFactory;
import org.verapdf.gf.foundry.VeraGreenfieldFoundryProvider;
import org.verapdf.metadata.fixer.FixerFactory;
import org.verapdf.pdfa.flavours.PDFAFlavour;
import org.verapdf.pdfa.validation.validators.ValidatorFactory;
import org.verapdf.processor.BatchProcessor;
import org.verapdf.processor.FormatOption;
import org.verapdf.processor.ProcessorConfig;
import org.verapdf.processor.ProcessorFactory;
import org.verapdf.processor.TaskType;
import org.verapdf.processor.plugins.PluginsCollectionConfig;
import org.verapdf.processor.reports.BatchSummary;

public final class VeraCli {
    public static void main(String[] args) throws Exception {
        PDFAFlavour flavour = PDFAFlavour.NO_FLAVOUR;
        FormatOption format = FormatOption.MRR;
        boolean verbose = false;
        List<File> files = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "-f":
                case "--flavour":
                    flavour = PDFAFlavour.fromString(args[++i]);
                    break;
                case "--format":
                    format = FormatOption.fromOption(args[++i]);
                    break;
                case "-v":
                case "--verbose":
                    verbose = true;
                    break;
                default:
                    files.add(new File(args[i]));
            }
        }
        if (files.isEmpty()) {
            System.err.println("VeraCli: no file to validate");
            System.exit(4);
        }
        VeraGreenfieldFoundryProvider.initialise();
        ProcessorConfig config = ProcessorFactory.fromValues(
                ValidatorFactory.createConfig(flavour, false, -1, false),
                FeatureFactory.defaultConfig(),
                PluginsCollectionConfig.defaultConfig(),
                FixerFactory.defaultConfig(),
                EnumSet.of(TaskType.VALIDATE));
        int status;
        try (BatchProcessor processor = ProcessorFactory.fileBatchProcessor(config)) {
            BatchSummary summary = processor.process(
                    files, ProcessorFactory.getHandler(format, verbose, System.out, false));
            System.out.flush();
            if (summary.getVeraExceptions() > 0) {
                status = 9;
            } else if (summary.getFailedEncryptedJobs() > 0) {
                status = 8;
            } else if (summary.getFailedParsingJobs() > 0) {
                status = 7;
            } else if (summary.getValidationSummary().getNonCompliantPdfaCount() > 0) {
                status = 1;
            } else {
                status = 0;
            }
        }
        System.exit(status);
    }
}
